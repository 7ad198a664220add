# imgpipe pipeline file — copy this, change the names, then run:
#
#   imgpipe plan    -f pipeline.hcl    # what would change in Azure (changes nothing)
#   imgpipe publish -f pipeline.hcl    # make it so (asks before changing anything; --yes for CI)
#
# The file holds literal values only: no variables, no env(), no functions.
# Credentials never go here: imgpipe signs in with the usual Azure environment
# (AZURE_TENANT_ID / AZURE_CLIENT_ID / AZURE_CLIENT_SECRET, a managed identity,
# or `az login`). Relative paths are relative to this file.

# One image: where its bits come from, and what it is.
image "webserver" {
  # A disk image you already have: VHDX, VHD (fixed or dynamic) or raw.
  # imgpipe streams it to Azure as a fixed VHD without writing a copy.
  source = "../build/webserver.vhdx"

  # ...or let Packer build it (then drop `source`):
  # packer {
  #   template = "../packer/webserver.pkr.hcl"
  #   vars     = { ubuntu_version = "24.04" }   # never secrets: use PKR_VAR_* in the environment
  # }

  os_type  = "Linux"        # Linux | Windows
  os_state = "Generalized"  # Generalized (sysprep/waagent deprovisioned) | Specialized

  # V1 (BIOS/MBR) or V2 (UEFI/GPT). Leave it out and imgpipe reads it from the
  # disk itself; if you set it and the disk disagrees, imgpipe stops.
  # hyperv_generation = "V2"

  security_type = "Standard"  # Standard | TrustedLaunch (needs V2; no managed image)
  architecture  = "x64"       # x64 | Arm64

  # The gallery definition's identifier (publisher/offer/sku), immutable once created.
  publisher = "contoso"
  offer     = "webserver"
  sku       = "ubuntu-24.04"
}

# One Azure destination: the gallery, definition and version to publish.
azure "prod" {
  subscription   = "00000000-0000-0000-0000-000000000000"
  resource_group = "rg-images"
  location       = "westeurope"   # where the gallery, definition and version live

  # Upload to a page blob in this storage account (the default, upload = "blob"),
  # or straight to a managed disk with upload = "disk" (no storage account needed).
  storage {
    account   = "stimagesweu"
    container = "vhds"
    # blob_endpoint = "http://127.0.0.1:10000/devstoreaccount1"   # Azurite, for trying things out
  }

  # A managed image is made from the blob, and the version from it. Set false
  # to make the version straight from the VHD (what Trusted Launch needs).
  managed_image      = true
  keep_managed_image = true   # false: removed once the version has replicated

  gallery    = "contoso_images"   # letters, digits, '.', '_'
  definition = "webserver"

  # "1.4.2" (explicit), or "next-patch": one more than the highest existing
  # version. Re-running a publish of the same disk reuses the version it made.
  version = "next-patch"

  # Where the version is copied. The version's own location is always included.
  target_region "westeurope" {
    replicas             = 2
    storage_account_type = "Standard_ZRS"
  }
  target_region "northeurope" {
    replicas = 1
  }

  exclude_from_latest = false          # true: `latest` keeps pointing at the previous version
  end_of_life         = "2027-12-31"   # a date; nothing is deleted then, it is a label

  # Replication to many regions can take an hour or more. When this expires
  # imgpipe stops waiting (the version keeps replicating); run publish again
  # to resume watching.
  replication_timeout = "2h"

  # Share with another subscription: Azure grants access to identities, not to
  # subscriptions, so name the identity that deploys there (its object id).
  # imgpipe gives it the Reader role on the gallery.
  # share {
  #   subscription   = "11111111-1111-1111-1111-111111111111"
  #   principal_id   = "22222222-2222-2222-2222-222222222222"
  #   principal_type = "ServicePrincipal"   # ServicePrincipal | Group | User
  # }
}

# The on-premises Hyper-V library (a local directory or an SMB share).
onprem "lab" {
  library = "/srv/images"
  channel = "test"
}

# Where versions, lineage and runs are recorded (no passwords in this url).
catalog {
  url = "sqlite:///var/lib/imgpipe/catalog.db"
}

# Garbage collection of old versions (imgpipe gc).
retention {
  keep_last        = 5
  keep_within      = "90d"
  protect_channels = ["prod"]
}
