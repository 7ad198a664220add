# Try imgpipe without an Azure subscription: the local ARM emulator plus Azurite.
#
#   npx azurite-blob --inMemoryPersistence --blobPort 10000 --skipApiVersionCheck --loose &
#   imgpipe emulator --listen 127.0.0.1:8443 --azurite-blob http://127.0.0.1:10000/devstoreaccount1 &
#   source <state dir>/emulator.env          # printed by imgpipe emulator
#   export AZURE_STORAGE_KEY=...             # Azurite's well-known development key
#   imgpipe plan    -f examples/emulator.hcl
#   imgpipe publish -f examples/emulator.hcl --yes
#   imgpipe check-deploy 1.0.0 -f examples/emulator.hcl --subscription 11111111-2222-4333-8444-555555555555 --location northeurope
#   imgpipe destroy -f examples/emulator.hcl --scope gallery --yes

image "demo" {
  source  = "../demo-out/demo.vhdx"   # any VHDX, VHD or raw disk with a partition table
  os_type = "Linux"
}

azure "emulator" {
  subscription   = "11111111-2222-4333-8444-555555555555"   # any well-formed id works in the emulator
  resource_group = "rg-demo"
  location       = "westeurope"

  storage {
    account       = "devstoreaccount1"
    container     = "vhds"
    blob_endpoint = "http://127.0.0.1:10000/devstoreaccount1"
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
