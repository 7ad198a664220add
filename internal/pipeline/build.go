package pipeline

// Recording what a Packer build made: each disk artifact becomes an image
// version with its provenance and its artifact copy.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"imgpipe/internal/build"
	"imgpipe/internal/catalog"
	"imgpipe/internal/source"
)

// BuildVersion is a disk artifact of a build and the version it is.
type BuildVersion struct {
	Ref      catalog.Ref
	Artifact build.Artifact
}

// BuildRecord is what was recorded in the catalog for one disk.
type BuildRecord struct {
	Image   string `json:"image"`
	Version string `json:"version"`
	Path    string `json:"path"`
	Catalog string `json:"catalog"`
}

// BuildVersions picks the disks of res that can be recorded: their image
// and version come from image and version (the flags) or from the
// manifest's custom_data ("image", "version"). Each other disk gets a note
// saying why it is not recorded.
func BuildVersions(res *build.Result, image, version string) ([]BuildVersion, []string) {
	var todo []BuildVersion
	var notes []string
	for _, a := range res.Disks() {
		ref := catalog.Ref{Image: cmp.Or(image, a.CustomData["image"]), Version: cmp.Or(version, a.CustomData["version"])}
		if ref.Image == "" || ref.Version == "" {
			notes = append(notes, fmt.Sprintf("%s not recorded in the catalog: give --image and --version, or set custom_data image and version in the manifest post-processor", a.Path))
			continue
		}
		todo = append(todo, BuildVersion{Ref: ref, Artifact: a})
	}
	return todo, notes
}

// RecordBuild records each of todo in cat as an image version with the
// build's provenance p and its artifact copy. Recording the same version
// with the same artifact again changes nothing; with another artifact it is
// refused (versions are immutable).
func RecordBuild(ctx context.Context, cat *catalog.Catalog, p build.Provenance, todo []BuildVersion) ([]BuildRecord, error) {
	commit := p.GitCommit
	if commit != "" && p.GitDirty {
		commit += "-dirty"
	}
	var out []BuildRecord
	for _, b := range todo {
		a, ref := b.Artifact, b.Ref
		_, err := cat.AddVersion(ctx, catalog.NewVersion{Image: ref.Image, Version: ref.Version, Provenance: catalog.Provenance{
			GitCommit:        commit,
			TemplateHash:     templateHash(p.TemplateFiles),
			PackerVersion:    p.PackerVersion,
			BuildID:          p.PackerRunUUID,
			BuildTime:        p.Finished,
			ArtifactSHA256:   a.SHA256,
			HyperVGeneration: a.Generation,
			OSType:           osTypeName(a.OS),
		}})
		if err != nil {
			return out, fmt.Errorf("record %s: %w", ref, err)
		}
		if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: a.Path,
			Fingerprint: source.DigestOf(a.SHA256), State: catalog.StatePresent}); err != nil {
			return out, fmt.Errorf("record the artifact of %s: %w", ref, err)
		}
		out = append(out, BuildRecord{Image: ref.Image, Version: ref.Version, Path: a.Path, Catalog: cat.Location()})
	}
	return out, nil
}

// templateHash is one SHA-256 over the template files' names and hashes, so a
// change to any file of a multi-file template changes it.
func templateHash(files []build.FileHash) string {
	if len(files) == 0 {
		return ""
	}
	h := sha256.New()
	for _, f := range files {
		fmt.Fprintf(h, "%s %s\n", f.SHA256, filepath.Base(f.Path)) // location-independent
	}
	return hex.EncodeToString(h.Sum(nil))
}

// osTypeName spells an OS the way Azure and the catalog do (Linux, Windows).
func osTypeName(os string) string {
	switch strings.ToLower(os) {
	case "linux":
		return "Linux"
	case "windows":
		return "Windows"
	}
	return os
}
