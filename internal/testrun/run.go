package testrun

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
	"imgpipe/internal/supplychain"
)

// Selected returns the tests the pipeline file declares for image (only the
// one named only, when given), as the runners take them.
func Selected(f *config.File, image, only string) ([]Test, error) {
	var out []config.Test
	for _, t := range f.TestsOf(image) {
		if only == "" || t.Name == only {
			out = append(out, t)
		}
	}
	if only != "" && len(out) == 0 {
		return nil, fmt.Errorf("the pipeline file declares no test %q for image %s", only, image)
	}
	if len(out) == 0 {
		return nil, noTests(image)
	}
	return FromConfig(out), nil
}

// Request is one `imgpipe test` on the qemu runner.
type Request struct {
	Ref   catalog.Ref
	Tests []Test
	// Disk, when set, is booted instead of the version's library copy
	// (still read-only).
	Disk   string
	Runner *Qemu
	By     string
	// Signer, when set, signs each result as an in-toto test-result
	// attestation of the version's artifact digest.
	Signer attest.Signer
}

// RunTests boots the version (its library copy, or req.Disk) once per test,
// records every result in the catalog and, with a Signer, signs each. The
// error is for the gate itself; failed tests are results that did not pass.
func RunTests(ctx context.Context, cat *catalog.Catalog, req Request) ([]Result, error) {
	d, v, err := LibraryDisk(ctx, cat, req.Ref)
	if req.Disk != "" && errors.Is(err, ErrNoLibraryCopy) {
		err = nil
	}
	if err != nil {
		return nil, err
	}
	if req.Disk != "" {
		d = Disk{Path: req.Disk, Format: FormatOf(req.Disk), Generation: v.HyperVGeneration}
	}
	g := &Gate{Catalog: cat, Runner: req.Runner, By: req.By}
	results, err := g.Run(ctx, req.Ref, d, v, req.Tests)
	if err != nil {
		return results, err
	}
	return results, sign(ctx, cat, req.Ref, req.Signer, results)
}

func sign(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, s attest.Signer, results []Result) error {
	if s == nil {
		return nil
	}
	for _, r := range results {
		var checks []attest.Check
		for _, ch := range r.Checks {
			checks = append(checks, attest.Check{Name: r.Test + "/" + ch.Name, Passed: ch.Passed})
		}
		if _, err := supplychain.SignTest(ctx, cat, ref, s, r.Runner, r.Test, checks); err != nil {
			return fmt.Errorf("test %s recorded, but its attestation was not signed: %w", r.Test, err)
		}
	}
	return nil
}

// HyperVScriptOf returns the Hyper-V test script of the version's library
// copy, from the metadata its library recorded (generation, OS, digest).
func HyperVScriptOf(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, tests []Test, o HyperVOptions) (string, error) {
	md, root, err := libraryMetadata(ctx, cat, ref)
	if err != nil {
		return "", err
	}
	if o.HostLibraryPath == "" {
		o.HostLibraryPath = root
	}
	return HyperVScript(md, o, tests)
}

func libraryMetadata(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (*onprem.Metadata, string, error) {
	cp, err := libraryCopy(ctx, cat, ref, "the Hyper-V host boots the library copy")
	if err != nil {
		return nil, "", err
	}
	root := cp.Location
	if root == "" { // LIBRARY/IMAGE/VERSION/DISK
		root = filepath.Dir(filepath.Dir(filepath.Dir(cp.ResourceID)))
	}
	lib, err := onprem.Open(root)
	if err != nil {
		return nil, "", fmt.Errorf("open the library of %s: %w", ref, err)
	}
	md, err := lib.Get(ref.Image, ref.Version)
	if err != nil {
		return nil, "", fmt.Errorf("the library copy of %s: %w", ref, err)
	}
	return md, strings.TrimRight(root, `/\`), nil
}

// RecordHyperV judges the reports the Hyper-V script saved (HyperVResult)
// against the declared tests and records them in the catalog as a run of
// kind test, signed when s is set.
func RecordHyperV(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, tests []Test, reports []string, by string, s attest.Signer) ([]Result, error) {
	v, err := cat.Version(ctx, ref)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, p := range reports {
		res, err := HyperVResult(p, ref.Image, ref.Version, tests)
		if err != nil {
			return nil, err
		}
		results = append(results, res)
	}
	if err := (&Gate{Catalog: cat, By: by}).Record(ctx, ref, v, results); err != nil {
		return results, err
	}
	return results, sign(ctx, cat, ref, s, results)
}
