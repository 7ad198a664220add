package onprem

import (
	"errors"
	"fmt"
	"regexp"
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
	if md.Revoked {
		return "", fmt.Errorf("%s %s: %w (%s); deploy another version", md.Image, md.Version, ErrRevoked, md.RevokedReason)
	}
	var gen int
	switch md.Generation {
	case "V1":
		gen = 1
	case "V2":
		gen = 2
	default:
		return "", fmt.Errorf("metadata of %s %s has generation %q: expected V1 or V2", md.Image, md.Version, md.Generation)
	}
	if !shaRE.MatchString(md.SHA256) || (md.OS != "linux" && md.OS != "windows") || checkName("image", md.Image) != nil || checkName("version", md.Version) != nil {
		return "", fmt.Errorf("metadata of %s %s is malformed (sha256, os, image or version): the library was edited by hand; restore it", md.Image, md.Version)
	}
	var childExt string
	switch md.Format {
	case "vhdx":
		childExt = "vhdx"
	case "vhd-fixed", "vhd-dynamic":
		if gen == 2 {
			return "", fmt.Errorf("%s %s is a VHD but Generation 2 VMs boot only from VHDX: add the version as VHDX", md.Image, md.Version)
		}
		childExt = "vhd"
	default:
		return "", fmt.Errorf("%s %s is stored as %s; Hyper-V differencing disks need a VHDX or VHD parent: add it in VHDX format", md.Image, md.Version, md.Format)
	}
	if o.VMName == "" {
		o.VMName = md.Image + "-" + md.Version
	}
	if o.MemoryBytes == 0 {
		o.MemoryBytes = 2 << 30
	}
	if o.MemoryBytes < 32<<20 || o.MemoryBytes%(2<<20) != 0 {
		return "", fmt.Errorf("memory %d bytes: Hyper-V needs at least 32 MiB in whole multiples of 2 MiB", o.MemoryBytes)
	}
	if o.CPUs == 0 {
		o.CPUs = 2
	}
	if o.CPUs < 1 || o.CPUs > 240 {
		return "", fmt.Errorf("cpus %d: use 1 to 240", o.CPUs)
	}
	for _, v := range []struct{ what, s string }{{"VM name", o.VMName}, {"switch", o.Switch}, {"host library path", o.HostLibraryPath}, {"disk directory", o.DiskDirectory}} {
		if strings.ContainsFunc(v.s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return "", fmt.Errorf("%s %q contains control characters", v.what, v.s)
		}
	}
	if strings.TrimSpace(o.VMName) == "" {
		return "", errors.New("VM name is empty")
	}
	root := o.HostLibraryPath
	sep := `\`
	if !strings.Contains(root, `\`) && strings.HasPrefix(root, "/") {
		sep = "/" // a Linux path (PowerShell on Linux, or tests)
	}
	parent := strings.TrimRight(root, `\/`) + sep + md.Image + sep + md.Version + sep + md.DiskFile
	secureBoot := ""
	if gen == 2 {
		secureBoot = "MicrosoftUEFICertificateAuthority" // Linux shim/grub signed by the Microsoft UEFI CA
		if md.OS == "windows" {
			secureBoot = "MicrosoftWindows"
		}
	}
	var b strings.Builder
	err := deployTmpl.Execute(&b, map[string]any{
		"Image": md.Image, "Version": md.Version, "SHA": strings.ToUpper(md.SHA256),
		"Gen": gen, "OS": md.OS, "VMName": PSQuote(o.VMName), "Parent": PSQuote(parent),
		"ChildName": PSQuote(o.VMName + "." + childExt), "DiskDir": PSQuote(o.DiskDirectory),
		"HasDiskDir": o.DiskDirectory != "", "Switch": PSQuote(o.Switch), "HasSwitch": o.Switch != "",
		"Memory": strconv.FormatInt(o.MemoryBytes, 10), "CPUs": o.CPUs,
		"SecureBoot": PSQuote(secureBoot), "HashCheck": !o.SkipHashCheck,
	})
	return b.String(), err
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

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
