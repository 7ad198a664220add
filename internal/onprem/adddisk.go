package onprem

// The one way a disk file enters a library: imgpipe onprem add and a
// publish's on-prem destination both call AddDisk.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/build"
	"imgpipe/internal/disk"
	"imgpipe/internal/progress"
	"imgpipe/internal/source"
	"imgpipe/internal/units"
)

// DiskRequest is a disk file to add to a library as Image/Version.
type DiskRequest struct {
	Path string
	// Manifest, instead of Path, names a Packer manifest whose last run
	// holds the disk (see DiskFromManifest); its custom_data "generation"
	// and "os" are the defaults, its run id is in the fingerprint.
	Manifest       string
	Image, Version string
	Channels       []string
	// Source is Path already inspected (digests, generation, size); when
	// nil, AddDisk inspects it in one read (step "hash input").
	Source *source.Info
	// Keep stores the input in its own format; by default it is stored as
	// VHDX (converted when needed), the format Hyper-V differencing disks
	// and Generation 2 VMs need.
	Keep bool
	// Generation is the declared Hyper-V generation ("V1", "V2"): it must
	// agree with the partition table, and is used when that does not tell.
	Generation string
	OS         string // "linux" (default) or "windows", lower case
	// SourceFingerprint identifies the source; default "sha256:HEX" of the
	// input, "packer-run:ID sha256:HEX" from a manifest.
	SourceFingerprint string
	KeepLatest        bool
	// Step, when set, is called as each pass starts ("hash input", "copy
	// input", "convert to VHDX", ...) and returns its progress function.
	Step func(name string) progress.Func
}

// AddDisk adds the disk file of r to l: one read of the input for its
// digests, generation and size (unless r.Source has them), the generation
// decided, then AddFile. It returns the result and the inspected input,
// whose Generation is the one recorded.
func AddDisk(ctx context.Context, l *Library, r DiskRequest) (*AddResult, *source.Info, error) {
	md := ManifestDisk{Path: r.Path}
	switch {
	case r.Manifest != "" && r.Path != "":
		return nil, nil, errors.New("give either FILE or --manifest, not both")
	case r.Manifest != "":
		var err error
		if md, err = DiskFromManifest(r.Manifest); err != nil {
			return nil, nil, err
		}
		r.Path, r.OS = md.Path, cmp.Or(r.OS, md.CustomData["os"])
	case r.Path == "":
		return nil, nil, errors.New("nothing to add: give a disk FILE or --manifest packer-manifest.json")
	}
	info := r.Source
	if info == nil {
		var bar progress.Func
		if r.Step != nil {
			bar = r.Step("hash input")
		}
		var err error
		if info, err = source.InspectProgress(ctx, r.Path, bar); err != nil {
			return nil, nil, err
		}
	}
	gen, err := decideGeneration(r, md.CustomData["generation"], info)
	if err != nil {
		return nil, nil, err
	}
	resolved := *info
	resolved.Generation = gen
	convert := string(disk.FormatVHDX)
	if r.Keep {
		convert = ""
	}
	fp := r.SourceFingerprint
	if fp == "" {
		fp = source.DigestOf(info.SHA256)
		if md.RunID != "" {
			fp = "packer-run:" + md.RunID + " " + fp
		}
	}
	res, err := l.AddFile(ctx, r.Path, AddOptions{
		Image: r.Image, Version: r.Version, Channels: r.Channels,
		Convert: convert, VirtualSize: info.VirtualSize, Generation: gen, OS: cmp.Or(r.OS, "linux"),
		SourceFingerprint: fp, InputSHA256: info.SHA256, KeepLatest: r.KeepLatest, Step: r.Step,
		Labels: map[string]string{"sourceFile": filepath.Base(r.Path)},
	})
	if err != nil {
		return nil, nil, err
	}
	return res, &resolved, nil
}

// decideGeneration is the partition table's generation, which a declared
// one must not contradict, else the declared one, else the fallback.
func decideGeneration(r DiskRequest, fallback string, info *source.Info) (string, error) {
	switch {
	case info.GenerationErr == "" && r.Generation != "" && r.Generation != info.Generation:
		return "", fmt.Errorf("--generation %s contradicts the disk, whose partition table says %s: a Generation %s VM would not boot it", r.Generation, info.Generation, strings.TrimPrefix(r.Generation, "V"))
	case info.GenerationErr == "":
		return info.Generation, nil
	case r.Generation != "":
		return r.Generation, nil
	case fallback != "":
		return fallback, nil
	}
	return "", fmt.Errorf("%s: %w (--generation V1 or V2)", r.Path, errors.New(info.GenerationErr))
}

// OSType is the pipeline file's os_type for an on-prem OS name.
func OSType(os string) string {
	if strings.EqualFold(os, "windows") {
		return "Windows"
	}
	return "Linux"
}

// ManifestDisk is the one disk artifact of a Packer manifest's last run.
type ManifestDisk struct {
	Path  string
	RunID string
	// CustomData is the build's custom_data ("generation", "os").
	CustomData map[string]string
}

// DiskFromManifest picks the one disk artifact of the manifest's last run.
func DiskFromManifest(path string) (ManifestDisk, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return ManifestDisk{}, fmt.Errorf("read Packer manifest: %w", err)
	}
	m, err := build.ParseManifest(b)
	if err != nil {
		return ManifestDisk{}, fmt.Errorf("%s: %w", path, err)
	}
	var disks []ManifestDisk
	for _, mb := range m.LastRun() {
		for _, file := range mb.Files {
			if _, ok := build.InspectDisk(file.Name); ok {
				disks = append(disks, ManifestDisk{Path: file.Name, RunID: mb.PackerRunUUID, CustomData: mb.CustomData})
			}
		}
	}
	switch len(disks) {
	case 0:
		return ManifestDisk{}, fmt.Errorf("the last run in %s lists no disk image (VHDX, VHD, .raw or .img): check the template's artifacts", path)
	case 1:
		if disks[0].CustomData == nil {
			disks[0].CustomData = map[string]string{}
		}
		return disks[0], nil
	}
	var names []string
	for _, d := range disks {
		names = append(names, d.Path)
	}
	return ManifestDisk{}, fmt.Errorf("the last run in %s lists several disks (%s): pass the one to add as FILE", path, strings.Join(names, ", "))
}

// Text is what an add did, for people: the version, where it is, what it
// is, and the channels pointed at it.
func (r *AddResult) Text(channels []string) string {
	verb := "added"
	if r.Existed {
		verb = "already present (same SHA-256), unchanged"
	}
	md := r.Metadata
	s := fmt.Sprintf("%s %s %s: %s\n  %s, %s, Generation %s, %s, sha256 %s\n",
		md.Image, md.Version, verb, r.Path, md.Format, units.IEC(md.VirtualSize), strings.TrimPrefix(md.Generation, "V"), md.OS, md.SHA256)
	if len(channels) > 0 {
		s += fmt.Sprintf("  channels: %s\n", strings.Join(channels, ", "))
	}
	return s
}
