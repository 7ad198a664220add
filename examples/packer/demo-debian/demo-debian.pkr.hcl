# The demo's bootable image: a small Debian bookworm disk (raw, MBR, extlinux,
# serial console) built by scripts/demo-image/build-raw.sh, run through Packer
# so the build path is the real one: the manifest post-processor records the
# artifact and imgpipe reads it.
#
# Run from the repository root, as root (debootstrap, loop device):
#
#   imgpipe build examples/packer/demo-debian --var version=1.0.0 \
#       --manifest out/demo-debian/packer-manifest.json
#
# Optional: --var boot_check=true boots the disk in qemu (software emulation)
# and waits for the login prompt before the build counts as done;
# --var library=DIR hands the disk to the on-prem library (channel test).

variable "version" {
  type = string
}
variable "image" {
  type    = string
  default = "demo-debian"
}
variable "size" {
  type        = string
  description = "virtual size of the raw disk (sparse)"
  default     = "2G"
}
variable "out_dir" {
  type    = string
  default = "out/demo-debian"
}
variable "boot_check" {
  type    = bool
  default = false
}
variable "boot_timeout" {
  type        = number
  description = "seconds the boot check waits for the login prompt (software emulation is slow)"
  default     = 600
}
variable "library" {
  type        = string
  description = "on-prem library to hand the disk to; empty: do not hand over"
  default     = ""
}
variable "channel" {
  type    = string
  default = "test"
}
variable "agent" {
  type        = string
  description = "a static imgpipe binary: installed as the image's agent, and it captures the identity and baseline as the last change to the tree (empty: an image without them)"
  default     = ""
}

locals {
  scripts = "${path.root}/../../../scripts/demo-image"
  disk    = "${var.out_dir}/${var.image}-${var.version}.raw"
}

source "null" "debian" {
  communicator = "none"
}

build {
  sources = ["source.null.debian"]

  provisioner "shell-local" {
    # DEMO_AGENT: build-raw.sh installs the agent and ends the tree with
    # `imgpipe baseline capture` (identity + baseline) before it becomes the disk.
    environment_vars = ["DEMO_AGENT=${var.agent}", "DEMO_IMAGE=${var.image}", "DEMO_VERSION=${var.version}"]
    inline = [
      "mkdir -p '${var.out_dir}'",
      "'${local.scripts}/build-raw.sh' '${local.disk}' '${var.size}'",
    ]
  }

  provisioner "shell-local" {
    inline = [
      "if [ '${var.boot_check}' = true ]; then '${local.scripts}/boot-check.sh' '${local.disk}' ${var.boot_timeout}; else echo 'boot check skipped (--var boot_check=true to run it)'; fi",
    ]
  }

  post-processors {
    # The null builder has no files of its own: artifice makes the disk the artifact.
    post-processor "artifice" {
      files = [local.disk]
    }
    post-processor "manifest" {
      output = "${var.out_dir}/packer-manifest.json"
      custom_data = {
        image      = var.image
        version    = var.version
        os         = "linux"
        generation = "V1" # MBR + extlinux: BIOS boot; imgpipe also reads it from the partition table
      }
    }
    post-processor "shell-local" {
      inline = [
        # Hand-over, one line: `imgpipe publish` takes its place once it exists.
        "if [ -n '${var.library}' ]; then imgpipe onprem add --library '${var.library}' --image '${var.image}' --version '${var.version}' --channel '${var.channel}' --manifest '${var.out_dir}/packer-manifest.json'; fi",
      ]
    }
  }
}
