# A Trusted Launch (UEFI, Secure Boot, vTPM) image uploaded straight to a
# managed disk: no storage account, no managed image (Trusted Launch cannot
# use one); the gallery version is made from the disk.

image "hardened" {
  source            = "../build/hardened.vhdx"
  os_type           = "Windows"
  hyperv_generation = "V2"            # Trusted Launch requires generation 2
  security_type     = "TrustedLaunch" # sets the definition's SecurityType feature
  publisher         = "contoso"
  offer             = "hardened-windows"
  sku               = "2025-datacenter"
}

azure "prod" {
  subscription   = "00000000-0000-0000-0000-000000000000"
  resource_group = "rg-images"
  location       = "westeurope"
  upload         = "disk"

  gallery    = "contoso_images"
  definition = "hardened-windows"
  version    = "2.3.0"

  target_region "westeurope" { replicas = 3 }
  target_region "swedencentral" {}

  end_of_life         = "2027-06-30"
  exclude_from_latest = true           # validate before `latest` points here
}
