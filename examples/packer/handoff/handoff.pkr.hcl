# A Packer template that drives the whole flow by itself: it builds a disk
# and its last post-processor hands the artifact to imgpipe, which finds the
# file through the manifest post-processor's output.
#
#   packer build -var library=/mnt/images -var version=1.0.0 examples/packer/handoff
#   imgpipe build examples/packer/handoff --var library=/mnt/images --var version=1.0.0 \
#       --manifest out/packer-manifest.json        # same, plus provenance
#
# The "disk" here is a tiny stand-in (a 4 MiB raw file with an MBR boot
# signature) so the template runs anywhere in seconds; examples/packer/demo-debian
# builds a real bootable Debian disk the same way.

variable "library" {
  type        = string
  description = "on-prem library folder (local path or mounted SMB share)"
}
variable "version" {
  type = string
}
variable "image" {
  type    = string
  default = "handoff-demo"
}
variable "channel" {
  type    = string
  default = "test"
}
variable "out_dir" {
  type    = string
  default = "out"
}

source "null" "disk" {
  communicator = "none"
}

build {
  sources = ["source.null.disk"]

  provisioner "shell-local" {
    inline = [
      "mkdir -p '${var.out_dir}'",
      "rm -f '${var.out_dir}/disk.raw'",
      "truncate -s 4M '${var.out_dir}/disk.raw'",
      # boot code and the 0x55AA signature: a BIOS-bootable MBR (Hyper-V Generation 1)
      "printf '\\353\\143\\220' | dd of='${var.out_dir}/disk.raw' conv=notrunc status=none",
      "printf '\\125\\252' | dd of='${var.out_dir}/disk.raw' bs=1 seek=510 conv=notrunc status=none",
      "echo 'image ${var.image} ${var.version}' | dd of='${var.out_dir}/disk.raw' bs=1M seek=1 conv=notrunc status=none",
    ]
  }

  post-processors {
    # The null builder has no files: artifice declares the disk as the artifact.
    post-processor "artifice" {
      files = ["${var.out_dir}/disk.raw"]
    }
    post-processor "manifest" {
      output = "${var.out_dir}/packer-manifest.json"
      custom_data = {
        os      = "linux"
        image   = var.image
        version = var.version
      }
    }
    post-processor "shell-local" {
      inline = [
        # The hand-over: one line. `imgpipe publish` replaces it once the
        # pipeline file drives every destination (on-prem library and Azure).
        "imgpipe onprem add --library '${var.library}' --image '${var.image}' --version '${var.version}' --channel '${var.channel}' --manifest '${var.out_dir}/packer-manifest.json'",
      ]
    }
  }
}
