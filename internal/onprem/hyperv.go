package onprem

import (
	"fmt"
	"regexp"
	"strings"
)

// HyperVVM is the shape of a Hyper-V VM made from a library version: the
// one place that decides what Hyper-V accepts (generation, parent format,
// memory, processors) for every script that creates such a VM (the deploy
// script here, the test gate's script in internal/testrun).
type HyperVVM struct {
	// Generation is 1 or 2, from the version's metadata.
	Generation int
	// Parent is the library disk as the Hyper-V host sees it: the read-only
	// parent of the VM's differencing disk.
	Parent string
	// ChildExt is the differencing disk's extension: "vhdx", or "vhd" for a
	// VHD parent (Generation 1 only).
	ChildExt string
	// SecureBootTemplate is the template for Generation 2 by OS (Linux
	// shim/grub are signed by the Microsoft UEFI CA); "" for Generation 1.
	SecureBootTemplate string
	MemoryBytes        int64
	CPUs               int
}

// HyperVShape checks that md can back a Hyper-V VM with memoryBytes of
// startup memory and cpus virtual processors (callers pass their defaults
// for zero values), with the library at hostLibraryPath as the host sees it
// (e.g. \\fileserver\images), and returns the VM's shape. A revoked version,
// metadata edited by hand, a parent Hyper-V cannot use or a size it refuses
// are errors saying what to do.
func HyperVShape(md *Metadata, hostLibraryPath string, memoryBytes int64, cpus int) (HyperVVM, error) {
	if md.Revoked {
		return HyperVVM{}, fmt.Errorf("%s %s: %w (%s); use another version", md.Image, md.Version, ErrRevoked, md.RevokedReason)
	}
	vm := HyperVVM{MemoryBytes: memoryBytes, CPUs: cpus}
	switch md.Generation {
	case "V1":
		vm.Generation = 1
	case "V2":
		vm.Generation = 2
	default:
		return HyperVVM{}, fmt.Errorf("metadata of %s %s has generation %q: expected V1 or V2", md.Image, md.Version, md.Generation)
	}
	if !shaRE.MatchString(md.SHA256) || (md.OS != "linux" && md.OS != "windows") || checkName("image", md.Image) != nil || checkName("version", md.Version) != nil {
		return HyperVVM{}, fmt.Errorf("metadata of %s %s is malformed (sha256, os, image or version): the library was edited by hand; restore it", md.Image, md.Version)
	}
	switch md.Format {
	case "vhdx":
		vm.ChildExt = "vhdx"
	case "vhd-fixed", "vhd-dynamic":
		if vm.Generation == 2 {
			return HyperVVM{}, fmt.Errorf("%s %s is a VHD but Generation 2 VMs boot only from VHDX (a differencing disk needs a VHDX parent): add the version as VHDX", md.Image, md.Version)
		}
		vm.ChildExt = "vhd"
	default:
		return HyperVVM{}, fmt.Errorf("%s %s is stored as %s; Hyper-V differencing disks need a VHDX or VHD parent: add it in VHDX format", md.Image, md.Version, md.Format)
	}
	if memoryBytes < 32<<20 || memoryBytes%(2<<20) != 0 {
		return HyperVVM{}, fmt.Errorf("memory %d bytes: Hyper-V needs at least 32 MiB in whole multiples of 2 MiB", memoryBytes)
	}
	if cpus < 1 || cpus > 240 {
		return HyperVVM{}, fmt.Errorf("cpus %d: use 1 to 240", cpus)
	}
	if err := CheckHostText("host library path", hostLibraryPath); err != nil {
		return HyperVVM{}, err
	}
	sep := `\`
	if !strings.Contains(hostLibraryPath, `\`) && strings.HasPrefix(hostLibraryPath, "/") {
		sep = "/" // a Linux path (PowerShell on Linux, or tests)
	}
	vm.Parent = strings.TrimRight(hostLibraryPath, `\/`) + sep + md.Image + sep + md.Version + sep + md.DiskFile
	if vm.Generation == 2 {
		vm.SecureBootTemplate = "MicrosoftUEFICertificateAuthority"
		if md.OS == "windows" {
			vm.SecureBootTemplate = "MicrosoftWindows"
		}
	}
	return vm, nil
}

// CheckHostText refuses a value bound for a Hyper-V script (a path, a VM or
// switch name) that contains control characters: quoting cannot make a
// newline harmless to someone reading or pasting the script.
func CheckHostText(what, s string) error {
	if strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return fmt.Errorf("%s %q contains control characters", what, s)
	}
	return nil
}

var shaRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
