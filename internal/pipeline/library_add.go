package pipeline

// imgpipe onprem add: a disk added to a library outside a publish, and
// recorded in the catalog when one is configured.

import (
	"context"
	"fmt"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
)

// LibraryAddRequest is a disk to add to the library at Library.
type LibraryAddRequest struct {
	onprem.DiskRequest
	Library string
	// Format is "vhdx" (convert when needed) or "keep" (the input's own).
	Format string
}

// LibraryAdd is what a library add did.
type LibraryAdd struct {
	Result *onprem.AddResult
	// Catalog is where the version and the copy were recorded; NotRecorded
	// says why a configured catalog did not take them (library versions
	// are free names, catalog versions MAJOR.MINOR.PATCH).
	Catalog     string
	NotRecorded error
}

// AddLibraryDisk adds r's disk to its library (onprem.AddDisk) and, with a
// catalog, records the version, its artifact and the library copy there,
// so promote --to test accepts the version.
func AddLibraryDisk(ctx context.Context, cat *catalog.Catalog, r LibraryAddRequest) (*LibraryAdd, error) {
	if r.Format != "vhdx" && r.Format != "keep" {
		return nil, fmt.Errorf("--format %q: use vhdx or keep", r.Format)
	}
	r.Keep = r.Format == "keep"
	lib, err := onprem.OpenLibrary(r.Library)
	if err != nil {
		return nil, err
	}
	res, info, err := onprem.AddDisk(ctx, lib, r.DiskRequest)
	if err != nil || cat == nil {
		return &LibraryAdd{Result: res}, err
	}
	a := &LibraryAdd{Result: res, Catalog: cat.Location()}
	if _, a.NotRecorded = catalog.ParseVersion(r.Version); a.NotRecorded != nil {
		return a, nil
	}
	img := &config.Image{Name: r.Image, OSType: onprem.OSType(res.Metadata.OS), HyperVGeneration: info.Generation}
	if err := RecordLibraryAdd(ctx, cat, img, r.Version, info, lib.Root(), res); err != nil {
		return nil, fmt.Errorf("the disk is in the library, but recording it in the catalog %s failed: %w (run the same add again: it is a no-op for the library)", cat.Location(), err)
	}
	return a, nil
}
