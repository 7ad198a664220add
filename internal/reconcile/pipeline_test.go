package reconcile

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/testenv"
	"imgpipe/internal/testrun"
)

// The Pipeline runner's test gate: no declared test or no library copy is
// no gate (never promoted); a version that does not boot fails its test,
// recorded in the catalog as a failed test run; promotion checks the
// channel's requirements.
func TestPipelineGateAndPromote(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	parse := func(extra string) *config.File {
		t.Helper()
		f, err := config.Parse([]byte(pipelineBase+extra), filepath.Join(dir, "pipeline.hcl"))
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ref := catalog.Ref{Image: "web", Version: "1.0.1"}
	if err := addVersion(ctx, cat, catalog.NewVersion{Image: "web", Version: "1.0.1"}); err != nil {
		t.Fatal(err)
	}

	p := &Pipeline{File: parse(""), Catalog: cat, Tester: &testrun.Qemu{Accel: "tcg", TempDir: dir}}
	if err := p.Test(ctx, ref); !errors.Is(err, ErrNoGate) || !strings.Contains(err.Error(), "declares no test") {
		t.Fatalf("no test declared: %v", err)
	}
	p.File = parse(`
test "boots" {
  boot_timeout = "4s"
  boot_marker  = "imgpipe-test-image: booted"
}
`)
	if err := p.Test(ctx, ref); !errors.Is(err, ErrNoGate) || !errors.Is(err, testrun.ErrNoLibraryCopy) {
		t.Fatalf("no library copy: %v", err)
	}

	// promotion: prod needs a library copy here, which 1.0.1 lacks
	if err := cat.SetRequirements(ctx, "web", "prod", []catalog.Requirement{{Kind: catalog.KindOnprem}}); err != nil {
		t.Fatal(err)
	}
	if err := p.Promote(ctx, ref, "prod"); err == nil {
		t.Fatal("promoted without the channel's required copy")
	}

	// a library copy that is no bootable disk: the boot check fails
	testenv.RequireTool(t, "qemu-system-x86_64")
	testenv.RequireTool(t, "qemu-img")
	disk := filepath.Join(dir, "library", "web-1.0.1.raw")
	if err := os.MkdirAll(filepath.Dir(disk), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindOnprem, ResourceID: disk, State: catalog.StatePresent}); err != nil {
		t.Fatal(err)
	}
	err = p.Test(ctx, ref)
	if err == nil || errors.Is(err, ErrNoGate) || !strings.Contains(err.Error(), "test boots failed") || !strings.Contains(err.Error(), "boot") {
		t.Fatalf("an unbootable disk: %v", err)
	}
	runs, err := cat.TestRuns(ctx, ref)
	if err != nil || len(runs) != 1 || runs[0].Passed || runs[0].Test != "boots" {
		t.Fatalf("recorded test runs %+v, %v", runs, err)
	}
	gate, err := cat.Runs(ctx, catalog.RunFilter{Image: "web", Kind: "test"})
	if err != nil || len(gate) != 1 || gate[0].Status != catalog.RunFailed || gate[0].By != "imgpipe reconcile" {
		t.Fatalf("the gate's run %+v, %v", gate, err)
	}
	// with the library copy, the promotion's requirement is met
	if err := p.Promote(ctx, ref, "prod"); err != nil {
		t.Fatal(err)
	}
	chs, _ := cat.Channels(ctx, "web")
	if len(chs) != 1 || chs[0].Version != "1.0.1" {
		t.Fatalf("channels %+v", chs)
	}
}
