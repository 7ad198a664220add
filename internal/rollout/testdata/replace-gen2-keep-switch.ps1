# Created by imgpipe rollout 7: replace VM 'web-07' (web 1.0.0) with web 2.0.0.
# Run in an elevated PowerShell on the Hyper-V host of the VM. The old VM is
# stopped and kept as 'web-07.replaced-1.0.0' (to roll back by hand: remove the new VM,
# rename the old one back, start it); the new VM gets its name, generation,
# switch, memory and processor count. The rollout counts this host done when
# its agent reports web 2.0.0.
$ErrorActionPreference = 'Stop'

$OldName  = 'web-07'
$KeepName = 'web-07.replaced-1.0.0'
$Old = Get-VM -Name $OldName
if ($Old.Generation -ne 2) { throw "VM '$OldName' is Generation $($Old.Generation) and web 2.0.0 is Generation 2: a VM's generation cannot change; deploy a new VM instead." }
if (Get-VM -Name $KeepName -ErrorAction SilentlyContinue) { throw "A VM named '$KeepName' already exists: '$OldName' was replaced before; remove '$KeepName' first." }
$OldSwitch  = (Get-VMNetworkAdapter -VMName $OldName | Select-Object -First 1).SwitchName
$OldMemory  = $Old.MemoryStartup
$OldCPUs    = $Old.ProcessorCount
$WasRunning = $Old.State -ne 'Off'
if ($WasRunning) { Stop-VM -Name $OldName -Force }
Rename-VM -Name $OldName -NewName $KeepName

try {
    # ---- imgpipe onprem deploy-script web 2.0.0 ----
    # Created by imgpipe onprem deploy-script.
    # Image web version 2.0.0, Hyper-V Generation 2, OS linux.
    # Run in an elevated PowerShell on the Hyper-V host. The library disk is the
    # read-only parent of a new differencing disk; it is never modified.
    $ErrorActionPreference = 'Stop'

    $VMName     = 'web-07'
    $ParentPath = '\\fs01\images\web\2.0.0\web-2.0.0.vhdx'
    $DiskDir    = (Get-VMHost).VirtualHardDiskPath
    $DiskPath   = Join-Path -Path $DiskDir -ChildPath 'web-07.vhdx'

    if (Get-VM -Name $VMName -ErrorAction SilentlyContinue) { throw "A VM named '$VMName' already exists on this host." }
    if (Test-Path -LiteralPath $DiskPath) { throw "$DiskPath already exists; remove it or choose another VM name." }

    # The parent must be exactly the published bits.
    $Hash = (Get-FileHash -LiteralPath $ParentPath -Algorithm SHA256).Hash
    if ($Hash -ne 'CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD') { throw "$ParentPath has SHA-256 $Hash, expected CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD: the library copy is damaged; do not use it." }

    New-VHD -Path $DiskPath -ParentPath $ParentPath -Differencing | Out-Null
    New-VM -Name $VMName -Generation 2 -MemoryStartupBytes 2147483648 -VHDPath $DiskPath | Out-Null
    Set-VMProcessor -VMName $VMName -Count 2
    Set-VMFirmware -VMName $VMName -EnableSecureBoot On -SecureBootTemplate 'MicrosoftUEFICertificateAuthority'
    Set-VM -Name $VMName -Notes ('imgpipe image=web version=2.0.0 sha256=CDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCDCD')
    Write-Output "Created VM $VMName (Generation 2) on $DiskPath; start it with: Start-VM -Name '$VMName'"
    # ---- as the old VM was ----
    Set-VM -Name $OldName -MemoryStartupBytes $OldMemory
    Set-VMProcessor -VMName $OldName -Count $OldCPUs
    if ($OldSwitch) { Connect-VMNetworkAdapter -VMName $OldName -SwitchName $OldSwitch }
} catch {
    if (-not (Get-VM -Name $OldName -ErrorAction SilentlyContinue)) {
        Rename-VM -Name $KeepName -NewName $OldName
        if ($WasRunning) { Start-VM -Name $OldName }
        throw "Replacing '$OldName' failed; the old VM is back as it was: $_"
    }
    throw "Replacing '$OldName' failed after the new VM was made; the old VM is kept, stopped, as '$KeepName': $_"
}
Start-VM -Name $OldName
Write-Output "Replaced '$OldName' with web 2.0.0; the old VM is kept, stopped, as '$KeepName'."
