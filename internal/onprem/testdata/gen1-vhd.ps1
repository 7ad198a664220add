# Created by imgpipe onprem deploy-script.
# Image web version 1.2.0, Hyper-V Generation 1, OS linux.
# Run in an elevated PowerShell on the Hyper-V host. The library disk is the
# read-only parent of a new differencing disk; it is never modified.
$ErrorActionPreference = 'Stop'

$VMName     = 'web-1.2.0'
$ParentPath = '\\fs01\images\web\1.2.0\web-1.2.0.vhd'
$DiskDir    = (Get-VMHost).VirtualHardDiskPath
$DiskPath   = Join-Path -Path $DiskDir -ChildPath 'web-1.2.0.vhd'

if (Get-VM -Name $VMName -ErrorAction SilentlyContinue) { throw "A VM named '$VMName' already exists on this host." }
if (Test-Path -LiteralPath $DiskPath) { throw "$DiskPath already exists; remove it or choose another VM name." }

# The parent must be exactly the published bits.
$Hash = (Get-FileHash -LiteralPath $ParentPath -Algorithm SHA256).Hash
if ($Hash -ne 'ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB') { throw "$ParentPath has SHA-256 $Hash, expected ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB: the library copy is damaged; do not use it." }

New-VHD -Path $DiskPath -ParentPath $ParentPath -Differencing | Out-Null
New-VM -Name $VMName -Generation 1 -MemoryStartupBytes 2147483648 -VHDPath $DiskPath | Out-Null
Set-VMProcessor -VMName $VMName -Count 2
Set-VM -Name $VMName -Notes ('imgpipe image=web version=1.2.0 sha256=ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB')
Write-Output "Created VM $VMName (Generation 1) on $DiskPath; start it with: Start-VM -Name '$VMName'"
