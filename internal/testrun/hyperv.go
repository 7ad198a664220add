package testrun

// The Hyper-V runner: imgpipe cannot drive a Hyper-V host from here, so it
// prints the PowerShell that runs the same test there, and records the
// verdict from the report the script brings back (RecordHyperV).
//
// Per test the script makes a differencing disk whose parent is the library
// copy (never written), a VM of the generation the library recorded (Secure
// Boot template for Generation 2: Microsoft UEFI CA for Linux, Microsoft
// Windows for Windows) with no network adapter, the test spec as a second
// disk (a 1 MiB fixed VHD: its data is the first 1 MiB of the file, so the
// spec frame is written at offset 0), and COM2 piped to a named pipe. It
// starts the VM, reads the pipe until the report's end marker, the boot
// timeout or 64 MiB, saves the spec and the report, and removes the VM and
// both disks whatever happened (try/finally).

import (
	"cmp"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/template"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/onprem"
)

// HyperVOptions shape the test script.
type HyperVOptions struct {
	// HostLibraryPath is the library root as the Hyper-V host sees it, e.g.
	// \\fileserver\images (default: the library path).
	HostLibraryPath string
	// WorkDir is where the host keeps the test's disks and reports (default:
	// the host's VirtualHardDiskPath).
	WorkDir string
	// MemoryBytes is the VM's startup memory (default 1 GiB); CPUs its
	// virtual processors (default 2).
	MemoryBytes int64
	CPUs        int
	// SkipHashCheck leaves out the Get-FileHash check of the parent.
	SkipHashCheck bool
}

// HyperVScript returns the PowerShell that runs tests on a Hyper-V host
// against the library version md. Every value is a single-quoted
// PowerShell literal or a validated number, so names cannot inject commands.
func HyperVScript(md *onprem.Metadata, o HyperVOptions, tests []Test) (string, error) {
	return hyperVScript(md, o, tests, newSpec)
}

type specMaker func(t Test, image, version string) (*agent.TestSpec, []byte, error)

func hyperVScript(md *onprem.Metadata, o HyperVOptions, tests []Test, mk specMaker) (string, error) {
	if len(tests) == 0 {
		return "", noTests(md.Image)
	}
	vm, err := onprem.HyperVShape(md, o.HostLibraryPath, cmp.Or(o.MemoryBytes, 1<<30), cmp.Or(o.CPUs, 2))
	if err != nil {
		return "", err
	}
	if err := onprem.CheckHostText("work directory", o.WorkDir); err != nil {
		return "", err
	}
	type run struct {
		Name, Nonce, Spec string
		Timeout           int
	}
	var runs []run
	for _, t := range tests {
		// the spec's validation bounds the test name (it names the VM and files)
		spec, frame, err := mk(t, md.Image, md.Version)
		if err != nil {
			return "", err
		}
		timeout := t.BootTimeout
		if timeout <= 0 {
			timeout = defaultBootTimeout
		}
		runs = append(runs, run{Name: onprem.PSQuote(t.Name), Nonce: onprem.PSQuote(spec.Nonce), Spec: onprem.PSQuote(base64.StdEncoding.EncodeToString(frame)),
			Timeout: int(timeout.Seconds())})
	}
	var b strings.Builder
	err = hypervTmpl.Execute(&b, map[string]any{
		"Image": md.Image, "Version": md.Version, "Gen": vm.Generation, "OS": md.OS, "SHA": strings.ToUpper(md.SHA256),
		"Parent": onprem.PSQuote(vm.Parent), "WorkDir": onprem.PSQuote(o.WorkDir), "HasWorkDir": o.WorkDir != "",
		"Prefix": onprem.PSQuote("imgpipe-test-" + md.Image + "-" + md.Version), "ChildExt": vm.ChildExt,
		"Memory": strconv.FormatInt(vm.MemoryBytes, 10), "CPUs": vm.CPUs, "SecureBoot": onprem.PSQuote(vm.SecureBootTemplate),
		"HashCheck": !o.SkipHashCheck, "Runs": runs, "MaxReport": maxSerialBytes,
		"SpecMiB": agent.SpecDiskBytes >> 20, "EndLine": agent.FrameEndLine,
		"Record": fmt.Sprintf("imgpipe test %s %s -f PIPELINE --runner hyperv --report", md.Image, md.Version),
	})
	return b.String(), err
}

// defaultBootTimeout is a test's boot_timeout when it gives none (the
// pipeline file's default).
const defaultBootTimeout = 5 * time.Minute

// HyperVResult judges what the script saved for one test (the report file
// of the guest's COM2; the spec it attached is the same path with .spec
// instead of .report) against the test the pipeline file declares: the spec
// must be that test's (same commands, same drift rule) and the report must
// answer it (same nonce). A missing, malformed or oversized report fails the
// test, as on the qemu runner.
func HyperVResult(reportPath, image, version string, declared []Test) (Result, error) {
	res := Result{Runner: "hyperv", Image: image, Version: version}
	specPath := strings.TrimSuffix(reportPath, filepath.Ext(reportPath)) + ".spec"
	var spec agent.TestSpec
	if err := agent.DecodeFrameFile(specPath, agent.FrameSpec, &spec); err != nil {
		return res, fmt.Errorf("the spec the script attached (%s): %w", specPath, err)
	}
	res.Test = spec.Test
	var t *Test
	for i := range declared {
		if declared[i].Name == spec.Test {
			t = &declared[i]
		}
	}
	if t == nil {
		return res, fmt.Errorf("%s is a report of test %q, which the pipeline file does not declare for %s", reportPath, spec.Test, image)
	}
	if spec.Image != image || spec.Version != version || spec.DriftClean != t.DriftClean || fmt.Sprint(spec.Commands) != fmt.Sprint(t.Commands) {
		return res, fmt.Errorf("%s was made for %s@%s with other checks than test %q declares now: print the script again (imgpipe test --runner hyperv) and rerun it", reportPath, spec.Image, spec.Version, t.Name)
	}
	if fi, err := os.Stat(reportPath); err == nil {
		res.StartedAt, res.FinishedAt = fi.ModTime().UTC(), fi.ModTime().UTC()
	}
	var rep *agent.TestReport
	res.Checks, rep = judgeReport(reportPath, &spec, Check{Name: "boot", Passed: true}, "no report on COM2")
	if rep != nil && !rep.StartedAt.IsZero() && !rep.FinishedAt.IsZero() {
		res.StartedAt, res.FinishedAt = rep.StartedAt.UTC(), rep.FinishedAt.UTC()
	}
	res.Passed = res.FirstFailure() == nil
	return res, nil
}

var hypervTmpl = template.Must(template.New("hyperv").Parse(`# Created by imgpipe test --runner hyperv.
# Image {{.Image}} version {{.Version}}, Hyper-V Generation {{.Gen}}, OS {{.OS}}: {{len .Runs}} test(s).
# Run in an elevated PowerShell on a Hyper-V host that reads the library share.
# Each test boots a throwaway VM with no network adapter on a differencing
# disk whose parent is the library copy (never modified); the test spec goes
# in as a second disk and the image's agent (imgpipe agent --once
# --report-to serial) answers on COM2, piped to a named pipe. The VM and its
# disks are removed whatever happens; the spec and the report are kept in
# $WorkDir for imgpipe to judge and record.
$ErrorActionPreference = 'Stop'

$ParentPath = {{.Parent}}
{{- if .HasWorkDir}}
$WorkDir    = {{.WorkDir}}
{{- else}}
$WorkDir    = (Get-VMHost).VirtualHardDiskPath
{{- end}}
{{- if .HashCheck}}

# The parent must be exactly the published bits.
$Hash = (Get-FileHash -LiteralPath $ParentPath -Algorithm SHA256).Hash
if ($Hash -ne '{{.SHA}}') { throw "$ParentPath has SHA-256 $Hash, expected {{.SHA}}: the library copy is damaged; do not test or use it." }
{{- end}}

function Invoke-ImgpipeTest([string]$Test, [string]$Nonce, [string]$Spec, [int]$TimeoutSeconds) {
    $Name   = {{.Prefix}} + '-' + $Test + '-' + $Nonce.Substring(0, 8)
    $Child  = Join-Path -Path $WorkDir -ChildPath ($Name + '.{{.ChildExt}}')
    $SpecVhd = Join-Path -Path $WorkDir -ChildPath ($Name + '-spec.vhd')
    $Pipe   = $Name
    $Report = Join-Path -Path $WorkDir -ChildPath ($Name + '.report')
    if (Get-VM -Name $Name -ErrorAction SilentlyContinue) { throw "A VM named '$Name' already exists on this host." }
    $client = $null
    try {
        New-VHD -Path $Child -ParentPath $ParentPath -Differencing | Out-Null
        # A fixed VHD is its data followed by a 512-byte footer: the spec frame goes at offset 0.
        New-VHD -Path $SpecVhd -SizeBytes {{.SpecMiB}}MB -Fixed | Out-Null
        $frame = [Convert]::FromBase64String($Spec)
        $fs = [System.IO.File]::Open($SpecVhd, 'Open', 'ReadWrite')
        try { $fs.Write($frame, 0, $frame.Length) } finally { $fs.Dispose() }
        [System.IO.File]::WriteAllBytes((Join-Path -Path $WorkDir -ChildPath ($Name + '.spec')), $frame)

        New-VM -Name $Name -Generation {{.Gen}} -MemoryStartupBytes {{.Memory}} -VHDPath $Child | Out-Null
        Get-VMNetworkAdapter -VMName $Name | Remove-VMNetworkAdapter   # no network between guest and host
        Set-VMProcessor -VMName $Name -Count {{.CPUs}}
{{- if eq .Gen 2}}
        Set-VMFirmware -VMName $Name -EnableSecureBoot On -SecureBootTemplate {{.SecureBoot}}
{{- end}}
        Add-VMHardDiskDrive -VMName $Name -Path $SpecVhd
        Set-VMComPort -VMName $Name -Number 2 -Path ('\\.\pipe\' + $Pipe)
        Set-VM -Name $Name -Notes ('imgpipe test ' + $Test + ' of image={{.Image}} version={{.Version}}')
        Start-VM -Name $Name

        # Read COM2 until the report's end marker, the boot timeout or {{.MaxReport}} bytes.
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
            if ($got.Length -gt {{.MaxReport}}) { $why = 'the guest wrote more than {{.MaxReport}} bytes to COM2'; break }
            if ($latin1.GetString($got.ToArray()).Contains('{{.EndLine}}')) { $why = ''; break }
        }
        [System.IO.File]::WriteAllBytes($Report, $got.ToArray())
        if ($why -ne '') { Write-Warning "test ${Test}: $why" }
        Write-Output "test ${Test}: report in $Report; record it with: {{.Record}} '$Report'"
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
{{range .Runs}}
Invoke-ImgpipeTest -Test {{.Name}} -Nonce {{.Nonce}} -TimeoutSeconds {{.Timeout}} -Spec {{.Spec}}
{{- end}}
`))
