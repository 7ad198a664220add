package pipeline

// imgpipe build: Packer's run (or an earlier run's manifest), then each disk
// artifact recorded in the catalog as an image version.

import (
	"context"
	"fmt"
	"strings"

	"imgpipe/internal/build"
	"imgpipe/internal/catalog"
)

// BuildRequest is a build and what to record its disks as.
type BuildRequest struct {
	build.Options
	// VarArgs are the --var name=value pairs (into Options.Vars).
	VarArgs []string
	// FromManifest records the artifacts of the earlier run in the
	// manifest without running Packer.
	FromManifest bool
	// Image and Version name the disk's version (default: the manifest's
	// custom_data image and version).
	Image, Version string
	// WithCatalog runs f with the catalog; it is called only when there is
	// a version to record.
	WithCatalog func(f func(*catalog.Catalog) error) error
	// Note, when set, is told of each disk not recorded, and why.
	Note func(string)
}

// Built is what a build made and recorded.
type Built struct {
	*build.Result
	Recorded []BuildRecord `json:"recorded"`
}

// Build runs r's build (or reads its manifest) and records its disk
// artifacts in the catalog.
func Build(ctx context.Context, r BuildRequest) (*Built, error) {
	r.Vars = map[string]string{}
	for _, kv := range r.VarArgs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--var %q: use --var name=value", kv)
		}
		r.Vars[k] = v
	}
	if r.Generation != "" && r.Generation != "V1" && r.Generation != "V2" {
		return nil, fmt.Errorf("--generation %q: use V1 or V2", r.Generation)
	}
	run := build.Run
	if r.FromManifest {
		run = build.FromManifest
	}
	res, err := run(ctx, r.Options)
	if err != nil {
		return nil, err
	}
	b := &Built{Result: res}
	todo, notes := BuildVersions(res, r.Image, r.Version)
	for _, n := range notes {
		if r.Note != nil {
			r.Note(n)
		}
	}
	if len(todo) == 0 {
		return b, nil
	}
	err = r.WithCatalog(func(c *catalog.Catalog) (err error) {
		b.Recorded, err = RecordBuild(ctx, c, res.Provenance, todo)
		return err
	})
	return b, err
}
