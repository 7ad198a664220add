# Try imgpipe without an Azure subscription: the local ARM emulator plus Azurite
# (the README's quickstart, "Local Azure emulator"):
#
#   imgpipe emulator --state ./emu --start-azurite &   # ARM emulator + Azurite, free port
#   source ./emu/emulator.env                          # credentials, endpoints, storage key
#   imgpipe plan    -f examples/emulator.hcl --source disk.raw
#   imgpipe publish -f examples/emulator.hcl --source disk.raw --yes
#   imgpipe check-deploy 1.0.0 -f examples/emulator.hcl --subscription 11111111-2222-4333-8444-555555555555 --location northeurope
#   imgpipe destroy -f examples/emulator.hcl --scope gallery --yes
#
# The storage block names no blob_endpoint: it comes from IMGPIPE_BLOB_ENDPOINT,
# which emulator.env sets to the Azurite the emulator started.

image "demo" {
  source  = "../demo-out/demo.vhdx"   # make demo's disk; or --source any VHDX, VHD, qcow2 or raw disk with a partition table
  os_type = "Linux"
}

azure "emulator" {
  subscription   = "11111111-2222-4333-8444-555555555555"   # any well-formed id works in the emulator
  resource_group = "rg-demo"
  location       = "westeurope"

  storage {
    account        = "devstoreaccount1"   # Azurite's account, a storage account in the emulator
    resource_group = "azemu-storage"      # where the emulator keeps it
    container      = "vhds"
  }

  gallery    = "demo_gallery"
  definition = "demo"
  version    = "next-patch"

  target_region "northeurope" {}
  target_region "eastus" {
    replicas             = 2
    storage_account_type = "Standard_ZRS"
  }

  replication_timeout = "5m"
}
