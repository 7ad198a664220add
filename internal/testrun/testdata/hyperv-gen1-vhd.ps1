# Created by imgpipe test --runner hyperv.
# Image web version 1.2.0, Hyper-V Generation 1, OS linux: 1 test(s).
# Run in an elevated PowerShell on a Hyper-V host that reads the library share.
# Each test boots a throwaway VM with no network adapter on a differencing
# disk whose parent is the library copy (never modified); the test spec goes
# in as a second disk and the image's agent (imgpipe agent --once
# --report-to serial) answers on COM2, piped to a named pipe. The VM and its
# disks are removed whatever happens; the spec and the report are kept in
# $WorkDir for imgpipe to judge and record.
$ErrorActionPreference = 'Stop'

$ParentPath = '\\fs01\images\web\1.2.0\web-1.2.0.vhd'
$WorkDir    = (Get-VMHost).VirtualHardDiskPath

# The parent must be exactly the published bits.
$Hash = (Get-FileHash -LiteralPath $ParentPath -Algorithm SHA256).Hash
if ($Hash -ne 'ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB') { throw "$ParentPath has SHA-256 $Hash, expected ABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABABAB: the library copy is damaged; do not test or use it." }

function Invoke-ImgpipeTest([string]$Test, [string]$Nonce, [string]$Spec, [int]$TimeoutSeconds) {
    $Name   = 'imgpipe-test-web-1.2.0' + '-' + $Test + '-' + $Nonce.Substring(0, 8)
    $Child  = Join-Path -Path $WorkDir -ChildPath ($Name + '.vhd')
    $SpecVhd = Join-Path -Path $WorkDir -ChildPath ($Name + '-spec.vhd')
    $Pipe   = $Name
    $Report = Join-Path -Path $WorkDir -ChildPath ($Name + '.report')
    if (Get-VM -Name $Name -ErrorAction SilentlyContinue) { throw "A VM named '$Name' already exists on this host." }
    $client = $null
    try {
        New-VHD -Path $Child -ParentPath $ParentPath -Differencing | Out-Null
        # A fixed VHD is its data followed by a 512-byte footer: the spec frame goes at offset 0.
        New-VHD -Path $SpecVhd -SizeBytes 1MB -Fixed | Out-Null
        $frame = [Convert]::FromBase64String($Spec)
        $fs = [System.IO.File]::Open($SpecVhd, 'Open', 'ReadWrite')
        try { $fs.Write($frame, 0, $frame.Length) } finally { $fs.Dispose() }
        [System.IO.File]::WriteAllBytes((Join-Path -Path $WorkDir -ChildPath ($Name + '.spec')), $frame)

        New-VM -Name $Name -Generation 1 -MemoryStartupBytes 1073741824 -VHDPath $Child | Out-Null
        Get-VMNetworkAdapter -VMName $Name | Remove-VMNetworkAdapter   # no network between guest and host
        Set-VMProcessor -VMName $Name -Count 2
        Add-VMHardDiskDrive -VMName $Name -Path $SpecVhd
        Set-VMComPort -VMName $Name -Number 2 -Path ('\\.\pipe\' + $Pipe)
        Set-VM -Name $Name -Notes ('imgpipe test ' + $Test + ' of image=web version=1.2.0')
        Start-VM -Name $Name

        # Read COM2 until the report's end marker, the boot timeout or 67108864 bytes.
        $deadline = (Get-Date).AddSeconds($TimeoutSeconds)
        $client = New-Object System.IO.Pipes.NamedPipeClientStream('.', $Pipe, [System.IO.Pipes.PipeDirection]::In)
        $client.Connect(60000)
        $got = New-Object System.IO.MemoryStream
        $buf = New-Object byte[] 65536
        $latin1 = [System.Text.Encoding]::GetEncoding(28591)
        $why = 'no report within the boot timeout of ' + $TimeoutSeconds + 's'
        while ((Get-Date) -lt $deadline) {
            $read = $client.ReadAsync($buf, 0, $buf.Length)
            $left = [int][Math]::Max(1, ($deadline - (Get-Date)).TotalMilliseconds)
            if (-not $read.Wait($left)) { break }
            if ($read.Result -eq 0) { $why = 'the VM closed COM2 without a report'; break }
            $got.Write($buf, 0, $read.Result)
            if ($got.Length -gt 67108864) { $why = 'the guest wrote more than 67108864 bytes to COM2'; break }
            if ($latin1.GetString($got.ToArray()).Contains('==IMGPIPE-END==')) { $why = ''; break }
        }
        [System.IO.File]::WriteAllBytes($Report, $got.ToArray())
        if ($why -ne '') { Write-Warning "test ${Test}: $why" }
        Write-Output "test ${Test}: report in $Report; record it with: imgpipe test web 1.2.0 -f PIPELINE --runner hyperv --report '$Report'"
    } finally {
        if ($client) { $client.Dispose() }
        if (Get-VM -Name $Name -ErrorAction SilentlyContinue) {
            Stop-VM -Name $Name -TurnOff -Force -ErrorAction SilentlyContinue
            Remove-VM -Name $Name -Force
        }
        foreach ($f in @($Child, $SpecVhd)) {
            if (Test-Path -LiteralPath $f) { Remove-Item -LiteralPath $f -Force }
        }
    }
}

Invoke-ImgpipeTest -Test 'smoke' -Nonce '0f0f0f0f0f0f0f0f0f0f0f0f0f0aaaaa' -TimeoutSeconds 300 -Spec 'Cj09SU1HUElQRS1TUEVDIHYxIGxlbj0yMzkgc2hhMjU2PTA5YzM2YmRmYThmZTI1NjQzOTY4MmM3ZGI1MWMzMGQ5YTk1NWViODRiZjZkMDJjYTFlN2Y4ZjhkZjAzZjQ4NDg9PQp7InNjaGVtYSI6ImltZ3BpcGUtdGVzdC1zcGVjL3YxIiwidGVzdCI6InNtb2tlIiwibm9uY2UiOiIwZjBmMGYwZjBmMGYwZjBmMGYwZjBmMGYwZjBhYWFhYSIsImltYWdlIjoid2ViIiwidmVyc2lvbiI6IjEuMi4wIiwiZHJpZnRfY2xlYW4iOnRydWUsImNvbW1hbmRzIjpbeyJuYW1lIjoibmdpbngiLCJydW4iOiJzeXN0ZW1jdGwgaXMtYWN0aXZlIG5naW54IiwiZXhwZWN0X2V4aXQiOjAsInRpbWVvdXRfc2VjIjozMH1dfQo9PUlNR1BJUEUtRU5EPT0K'
