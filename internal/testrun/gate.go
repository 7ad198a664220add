package testrun

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// FromConfig turns the pipeline file's test blocks into runner tests.
func FromConfig(ts []config.Test) []Test {
	var out []Test
	for _, t := range ts {
		rt := Test{Name: t.Name, BootTimeout: t.BootTimeout, BootMarker: t.BootMarker, DriftClean: t.DriftClean}
		for _, c := range t.Commands {
			rt.Commands = append(rt.Commands, agent.TestCommand{Name: c.Name, Run: c.Run, ExpectExit: c.ExpectExit, TimeoutSec: int(c.Timeout.Seconds())})
		}
		out = append(out, rt)
	}
	return out
}

// noTests is the error of an image without a test block.
func noTests(image string) error {
	return fmt.Errorf("no test declared for image %s: add a test \"NAME\" { ... } block to the pipeline file", image)
}

// ErrNoLibraryCopy says the version has no on-prem copy to boot.
var ErrNoLibraryCopy = errors.New("no on-prem library copy")

// LibraryDisk finds the version's on-prem library copy in the catalog.
func LibraryDisk(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (Disk, catalog.Version, error) {
	v, err := cat.Version(ctx, ref)
	if err != nil {
		return Disk{}, v, err
	}
	cp, err := libraryCopy(ctx, cat, ref, "the test boots the library copy")
	if err != nil {
		return Disk{}, v, err
	}
	return Disk{Path: cp.ResourceID, Format: FormatOf(cp.ResourceID), Generation: v.HyperVGeneration}, v, nil
}

// libraryCopy is the version's first live on-prem copy in the catalog;
// none is ErrNoLibraryCopy, with why a test needs one.
func libraryCopy(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, why string) (catalog.Copy, error) {
	cps, err := cat.Copies(ctx, ref)
	if err != nil {
		return catalog.Copy{}, err
	}
	for _, cp := range cps {
		if cp.Kind == catalog.KindOnprem && cp.State != catalog.StateDeleted && cp.State != catalog.StateFailed {
			return cp, nil
		}
	}
	return catalog.Copy{}, fmt.Errorf("%w for %s: publish it to an onprem destination first (%s)", ErrNoLibraryCopy, ref, why)
}

// FormatOf is qemu's format name for a library file.
func FormatOf(path string) string {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".vhd":
		return "vpc"
	case ".qcow2":
		return "qcow2"
	case ".raw", ".img":
		return "raw"
	}
	return "vhdx"
}

// Gate runs every test of a version on its library copy and records each
// result in the catalog (a test run of the version, and a run record of
// kind "test" with one step per test).
type Gate struct {
	Catalog *catalog.Catalog
	Runner  *Qemu
	By      string
}

// Run tests ref with tests. It returns the results; the error is for the
// gate itself (no library copy, runner or catalog failure).
func (g *Gate) Run(ctx context.Context, ref catalog.Ref, disk Disk, v catalog.Version, tests []Test) ([]Result, error) {
	if len(tests) == 0 {
		return nil, noTests(ref.Image)
	}
	names := make([]string, len(tests))
	for i, t := range tests {
		names[i] = t.Name
	}
	return g.each(ctx, ref, v, names, func(i int) (Result, error) {
		return g.Runner.Run(ctx, disk, ref.Image, ref.Version, tests[i])
	})
}

// each records one run of kind test with a step per test, named by names:
// result(i) gives the i-th result (an error ends the run, the step failed),
// recorded as a test run of the version. The run fails when the gate does
// or a test did not pass.
func (g *Gate) each(ctx context.Context, ref catalog.Ref, v catalog.Version, names []string, result func(int) (Result, error)) (out []Result, err error) {
	run, err := g.Catalog.StartRun(ctx, catalog.Run{Kind: "test", Image: ref.Image, Version: ref.Version, By: g.By})
	if err != nil {
		return nil, err
	}
	defer func() {
		runErr := err
		for _, r := range out {
			if runErr == nil && !r.Passed {
				runErr = fmt.Errorf("test %s failed", r.Test)
			}
		}
		if ferr := g.Catalog.FinishRun(context.WithoutCancel(ctx), run.ID, runErr); ferr != nil && err == nil {
			err = ferr
		}
	}()
	for i, name := range names {
		st, err := g.Catalog.AddStep(ctx, run.ID, catalog.Step{Name: "test " + name, Status: catalog.RunRunning})
		if err != nil {
			return out, err
		}
		res, err := result(i)
		if err != nil {
			_ = g.Catalog.UpdateStep(context.WithoutCancel(ctx), run.ID, st.Seq, catalog.RunFailed, err.Error(), nil)
			return out, err
		}
		if err := g.record(ctx, ref, v, &res, run.ID, st.Seq); err != nil {
			return out, err
		}
		out = append(out, res)
	}
	return out, nil
}

// record stores one result as a test run of the version and ends its step.
func (g *Gate) record(ctx context.Context, ref catalog.Ref, v catalog.Version, res *Result, runID int64, seq int) error {
	res.Digest = v.ArtifactSHA256
	tr := catalog.TestRun{Ref: ref, Test: res.Test, Runner: res.Runner, ArtifactDigest: v.ArtifactSHA256, Passed: res.Passed,
		StartedAt: res.StartedAt, FinishedAt: res.FinishedAt, RunID: runID}
	for _, c := range res.Checks {
		tr.Checks = append(tr.Checks, catalog.TestCheck{Name: c.Name, Passed: c.Passed, Output: c.Output})
	}
	if _, err := g.Catalog.AddTestRun(ctx, tr); err != nil {
		return err
	}
	status, detail := catalog.RunSucceeded, "passed on "+res.Runner
	if f := res.FirstFailure(); f != nil {
		status, detail = catalog.RunFailed, f.Name+": "+agent.Cut(f.Output, 400)
	}
	return g.Catalog.UpdateStep(ctx, runID, seq, status, detail, nil)
}

// Record records results that came from elsewhere (the Hyper-V script's
// reports, judged by HyperVResult) as a run of kind test, as Run does.
func (g *Gate) Record(ctx context.Context, ref catalog.Ref, v catalog.Version, results []Result) error {
	names := make([]string, len(results))
	for i, r := range results {
		names[i] = r.Test
	}
	out, err := g.each(ctx, ref, v, names, func(i int) (Result, error) { return results[i], nil })
	copy(results, out) // with the artifact digest they were recorded with
	return err
}
