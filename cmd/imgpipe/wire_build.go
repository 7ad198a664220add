package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"

	"imgpipe/internal/build"
	"imgpipe/internal/catalog"
)

// buildRecord is what `imgpipe build` stored in the catalog for one disk.
type buildRecord struct {
	Image   string `json:"image"`
	Version string `json:"version"`
	Path    string `json:"path"`
	Catalog string `json:"catalog"`
}

// recordBuild records each disk artifact of res as an image version with its
// provenance and its artifact copy. The image and version come from the flags
// or from the manifest's custom_data ("image", "version"); a disk that names
// neither is not recorded and the returned note says why.
func recordBuild(ctx context.Context, catalogFlag string, res *build.Result, image, version string) ([]buildRecord, []string, error) {
	var todo []build.Artifact
	var notes []string
	for _, a := range res.Disks() {
		if cmpOr(image, a.CustomData["image"]) == "" || cmpOr(version, a.CustomData["version"]) == "" {
			notes = append(notes, fmt.Sprintf("%s not recorded in the catalog: give --image and --version, or set custom_data image and version in the manifest post-processor", a.Path))
			continue
		}
		todo = append(todo, a)
	}
	if len(todo) == 0 {
		return nil, notes, nil
	}
	cat, err := openCatalogWith(ctx, catalogChoice{flag: catalogFlag, policy: required})
	if err != nil {
		return nil, notes, err
	}
	defer cat.Close()
	p := res.Provenance
	commit := p.GitCommit
	if commit != "" && p.GitDirty {
		commit += "-dirty"
	}
	var out []buildRecord
	for _, a := range todo {
		ref := catalog.Ref{Image: cmpOr(image, a.CustomData["image"]), Version: cmpOr(version, a.CustomData["version"])}
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
			return out, notes, fmt.Errorf("record %s: %w", ref, err)
		}
		if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: a.Path,
			Fingerprint: "sha256:" + a.SHA256, State: catalog.StatePresent}); err != nil {
			return out, notes, fmt.Errorf("record the artifact of %s: %w", ref, err)
		}
		out = append(out, buildRecord{Image: ref.Image, Version: ref.Version, Path: a.Path, Catalog: cat.Location()})
	}
	return out, notes, nil
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

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
