package testrun

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
)

// TestGateRecordsRunsAndSteps: Run and Record keep one run of kind test
// with a step per test and a test run per result (with the artifact
// digest); the run fails when a test did not pass, and a runner failure
// fails its step and the run.
func TestGateRecordsRunsAndSteps(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	ref := catalog.Ref{Image: "app", Version: "1.0.0"}
	v, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "app", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	v.ArtifactSHA256 = strings.Repeat("ab", 32)
	g := &Gate{Catalog: cat, By: "test", Runner: &Qemu{System: filepath.Join(t.TempDir(), "no-qemu")}}
	results := []Result{
		{Test: "smoke", Runner: "hyperv", Passed: true, Checks: []Check{{Name: "boot", Passed: true}}},
		{Test: "deep", Runner: "hyperv", Checks: []Check{{Name: "boot", Passed: true}, {Name: "command:x", Output: "exit 1, want 0"}}},
	}
	if err := g.Record(ctx, ref, v, results); err != nil {
		t.Fatal(err)
	}
	if results[0].Digest != v.ArtifactSHA256 || results[1].Digest != v.ArtifactSHA256 {
		t.Errorf("results not given the digest they were recorded with: %+v", results)
	}
	if _, err := g.Run(ctx, ref, Disk{Path: "lib.vhdx"}, v, []Test{{Name: "boot"}}); err == nil || !strings.Contains(err.Error(), "qemu-system-x86_64") {
		t.Fatalf("a runner that cannot start: %v", err)
	}
	if _, err := g.Run(ctx, ref, Disk{}, v, nil); err == nil || !strings.Contains(err.Error(), "no test declared") {
		t.Fatalf("no tests: %v", err)
	}
	runs, err := cat.Runs(ctx, catalog.RunFilter{Kind: "test"})
	if err != nil || len(runs) != 2 {
		t.Fatalf("runs %+v %v, want the recorded one and the failed one", runs, err)
	}
	failed, recorded := runs[0], runs[1]
	if recorded.Status != catalog.RunFailed || !strings.Contains(recorded.Error, "test deep failed") || len(recorded.Steps) != 2 ||
		recorded.Steps[0].Status != catalog.RunSucceeded || recorded.Steps[1].Status != catalog.RunFailed || !strings.Contains(recorded.Steps[1].Detail, "command:x: exit 1") {
		t.Errorf("recorded run %+v", recorded)
	}
	if failed.Status != catalog.RunFailed || len(failed.Steps) != 1 || failed.Steps[0].Status != catalog.RunFailed || !strings.Contains(failed.Steps[0].Detail, "qemu-system-x86_64") {
		t.Errorf("run with a failing runner %+v", failed)
	}
	trs, err := cat.TestRuns(ctx, ref)
	if err != nil || len(trs) != 2 {
		t.Fatalf("test runs %+v %v", trs, err)
	}
	for _, tr := range trs {
		if tr.ArtifactDigest != v.ArtifactSHA256 || tr.Passed != (tr.Test == "smoke") || tr.RunID != recorded.ID {
			t.Errorf("test run %+v", tr)
		}
	}
}
