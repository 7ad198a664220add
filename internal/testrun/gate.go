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

// ErrNoLibraryCopy says the version has no on-prem copy to boot.
var ErrNoLibraryCopy = errors.New("no on-prem library copy")

// LibraryDisk finds the version's on-prem library copy in the catalog.
func LibraryDisk(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (Disk, catalog.Version, error) {
	v, err := cat.Version(ctx, ref)
	if err != nil {
		return Disk{}, v, err
	}
	cps, err := cat.Copies(ctx, ref)
	if err != nil {
		return Disk{}, v, err
	}
	for _, cp := range cps {
		if cp.Kind != catalog.KindOnprem || cp.State == catalog.StateDeleted || cp.State == catalog.StateFailed {
			continue
		}
		return Disk{Path: cp.ResourceID, Format: FormatOf(cp.ResourceID), Generation: v.HyperVGeneration}, v, nil
	}
	return Disk{}, v, fmt.Errorf("%w for %s: publish it to an onprem destination first (the test boots the library copy)", ErrNoLibraryCopy, ref)
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
func (g *Gate) Run(ctx context.Context, ref catalog.Ref, disk Disk, v catalog.Version, tests []Test) (out []Result, err error) {
	if len(tests) == 0 {
		return nil, fmt.Errorf("no test declared for image %s: add a test \"NAME\" { ... } block to the pipeline file", ref.Image)
	}
	run, err := g.Catalog.StartRun(ctx, catalog.Run{Kind: "test", Image: ref.Image, Version: ref.Version, By: g.By})
	if err != nil {
		return nil, err
	}
	defer func() {
		runErr := err
		if runErr == nil {
			for _, r := range out {
				if !r.Passed {
					runErr = fmt.Errorf("test %s failed", r.Test)
					break
				}
			}
		}
		if ferr := g.Catalog.FinishRun(context.WithoutCancel(ctx), run.ID, runErr); ferr != nil && err == nil {
			err = ferr
		}
	}()
	for _, t := range tests {
		st, err := g.Catalog.AddStep(ctx, run.ID, catalog.Step{Name: "test " + t.Name, Status: catalog.RunRunning})
		if err != nil {
			return out, err
		}
		res, err := g.Runner.Run(ctx, disk, ref.Image, ref.Version, t)
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
		status, detail = catalog.RunFailed, f.Name+": "+cut(f.Output, 400)
	}
	return g.Catalog.UpdateStep(ctx, runID, seq, status, detail, nil)
}

// Record records results that came from elsewhere (the Hyper-V script's
// reports, judged by HyperVResult) as a run of kind test, as Run does.
func (g *Gate) Record(ctx context.Context, ref catalog.Ref, v catalog.Version, results []Result) (err error) {
	run, err := g.Catalog.StartRun(ctx, catalog.Run{Kind: "test", Image: ref.Image, Version: ref.Version, By: g.By})
	if err != nil {
		return err
	}
	defer func() {
		runErr := err
		for _, r := range results {
			if runErr == nil && !r.Passed {
				runErr = fmt.Errorf("test %s failed", r.Test)
			}
		}
		if ferr := g.Catalog.FinishRun(context.WithoutCancel(ctx), run.ID, runErr); ferr != nil && err == nil {
			err = ferr
		}
	}()
	for i := range results {
		st, err := g.Catalog.AddStep(ctx, run.ID, catalog.Step{Name: "test " + results[i].Test, Status: catalog.RunRunning})
		if err != nil {
			return err
		}
		if err := g.record(ctx, ref, v, &results[i], run.ID, st.Seq); err != nil {
			return err
		}
	}
	return nil
}
