package onprem

import (
	"cmp"
	"errors"
	"strconv"
	"strings"
	"text/template"
)

// DeployOptions shapes the PowerShell a Hyper-V administrator runs to create a
// VM from a library version.
type DeployOptions struct {
	VMName string // default "<image>-<version>"
	Switch string // virtual switch to connect; empty leaves the adapter unconnected
	// MemoryBytes is the startup memory (default 2 GiB); CPUs the virtual
	// processor count (default 2).
	MemoryBytes int64
	CPUs        int
	// HostLibraryPath is the library root as the Hyper-V host sees it, e.g.
	// \\fileserver\images (default: the library path given to Open).
	HostLibraryPath string
	// DiskDirectory is where the VM's differencing disk goes on the host
	// (default: the host's VirtualHardDiskPath).
	DiskDirectory string
	// SkipHashCheck leaves out the Get-FileHash check of the parent disk
	// (it reads the whole parent, which takes a while over SMB).
	SkipHashCheck bool
}

// DeployScript returns the PowerShell that creates a VM on a Hyper-V host
// from md: a differencing disk whose parent is the library disk (never
// modified, shared by every VM), New-VM with the generation recorded in the
// metadata and, for Generation 2, the Secure Boot template matching the OS.
// Every value is emitted as a single-quoted PowerShell literal, so names
// cannot inject commands.
func DeployScript(md *Metadata, o DeployOptions) (string, error) {
	if o.VMName == "" {
		o.VMName = md.Image + "-" + md.Version
	}
	vm, err := HyperVShape(md, o.HostLibraryPath, cmp.Or(o.MemoryBytes, 2<<30), cmp.Or(o.CPUs, 2))
	if err != nil {
		return "", err
	}
	for _, v := range []struct{ what, s string }{{"VM name", o.VMName}, {"switch", o.Switch}, {"disk directory", o.DiskDirectory}} {
		if err := CheckHostText(v.what, v.s); err != nil {
			return "", err
		}
	}
	if strings.TrimSpace(o.VMName) == "" {
		return "", errors.New("VM name is empty")
	}
	var b strings.Builder
	err = deployTmpl.Execute(&b, map[string]any{
		"Image": md.Image, "Version": md.Version, "SHA": strings.ToUpper(md.SHA256),
		"Gen": vm.Generation, "OS": md.OS, "VMName": PSQuote(o.VMName), "Parent": PSQuote(vm.Parent),
		"ChildName": PSQuote(o.VMName + "." + vm.ChildExt), "DiskDir": PSQuote(o.DiskDirectory),
		"HasDiskDir": o.DiskDirectory != "", "Switch": PSQuote(o.Switch), "HasSwitch": o.Switch != "",
		"Memory": strconv.FormatInt(vm.MemoryBytes, 10), "CPUs": vm.CPUs,
		"SecureBoot": PSQuote(vm.SecureBootTemplate), "HashCheck": !o.SkipHashCheck,
	})
	return b.String(), err
}

// The template's own values are pre-quoted (PSQuote) or plain numbers and
// validated names; Image, Version and OS only appear in comments and match
// checkName's character set.
var deployTmpl = template.Must(template.New("deploy").Parse(`# Created by imgpipe onprem deploy-script.
# Image {{.Image}} version {{.Version}}, Hyper-V Generation {{.Gen}}, OS {{.OS}}.
# Run in an elevated PowerShell on the Hyper-V host. The library disk is the
# read-only parent of a new differencing disk; it is never modified.
$ErrorActionPreference = 'Stop'

$VMName     = {{.VMName}}
$ParentPath = {{.Parent}}
{{- if .HasDiskDir}}
$DiskDir    = {{.DiskDir}}
{{- else}}
$DiskDir    = (Get-VMHost).VirtualHardDiskPath
{{- end}}
$DiskPath   = Join-Path -Path $DiskDir -ChildPath {{.ChildName}}

if (Get-VM -Name $VMName -ErrorAction SilentlyContinue) { throw "A VM named '$VMName' already exists on this host." }
if (Test-Path -LiteralPath $DiskPath) { throw "$DiskPath already exists; remove it or choose another VM name." }
{{- if .HashCheck}}

# The parent must be exactly the published bits.
$Hash = (Get-FileHash -LiteralPath $ParentPath -Algorithm SHA256).Hash
if ($Hash -ne '{{.SHA}}') { throw "$ParentPath has SHA-256 $Hash, expected {{.SHA}}: the library copy is damaged; do not use it." }
{{- end}}

New-VHD -Path $DiskPath -ParentPath $ParentPath -Differencing | Out-Null
New-VM -Name $VMName -Generation {{.Gen}} -MemoryStartupBytes {{.Memory}} -VHDPath $DiskPath{{if .HasSwitch}} -SwitchName {{.Switch}}{{end}} | Out-Null
Set-VMProcessor -VMName $VMName -Count {{.CPUs}}
{{- if eq .Gen 2}}
Set-VMFirmware -VMName $VMName -EnableSecureBoot On -SecureBootTemplate {{.SecureBoot}}
{{- end}}
Set-VM -Name $VMName -Notes ('imgpipe image={{.Image}} version={{.Version}} sha256={{.SHA}}')
Write-Output "Created VM $VMName (Generation {{.Gen}}) on $DiskPath; start it with: Start-VM -Name '$VMName'"
`))
