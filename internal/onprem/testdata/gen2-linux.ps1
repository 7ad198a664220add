# Created by imgpipe onprem deploy-script.
# Image web version 1.2.0, Hyper-V Generation 2, OS linux.
# Run in an elevated PowerShell on the Hyper-V host. The library disk is the
# read-only parent of a new differencing disk; it is never modified.
$ErrorActionPreference = 'Stop'

$VMName     = 'web-01'
$ParentPath = '\\fs01\images\web\1.2.0\web-1.2.0.vhdx'
$DiskDir    = 'D:\Hyper-V\Disks'
$DiskPath   = Join-Path -Path $DiskDir -ChildPath 'web-01.vhdx'

if (Get-VM -Name $VMName -ErrorAction SilentlyContinue) { throw "A VM named '$VMName' already exists on this host." }
if (Test-Path -LiteralPath $DiskPath) { throw "$DiskPath already exists; remove it or choose another VM name." }

# The parent must be exactly the published bits.
$Hash = (Get-FileHash -LiteralPath $ParentPath -Algorithm SHA256).Hash
if ($Hash -ne 'ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB') { throw "$ParentPath has SHA-256 $Hash, expected ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB: the library copy is damaged; do not use it." }

New-VHD -Path $DiskPath -ParentPath $ParentPath -Differencing | Out-Null
New-VM -Name $VMName -Generation 2 -MemoryStartupBytes 4294967296 -VHDPath $DiskPath -SwitchName 'External' | Out-Null
Set-VMProcessor -VMName $VMName -Count 4
Set-VMFirmware -VMName $VMName -EnableSecureBoot On -SecureBootTemplate 'MicrosoftUEFICertificateAuthority'
Set-VM -Name $VMName -Notes ('imgpipe image=web version=1.2.0 sha256=ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB')
Write-Output "Created VM $VMName (Generation 2) on $DiskPath; start it with: Start-VM -Name '$VMName'"
