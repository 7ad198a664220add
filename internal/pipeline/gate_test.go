package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/testrun"
)

type recStager map[string]bool

func (r recStager) SetExcludeFromLatest(_ context.Context, id string, exclude bool) error {
	r[id] = exclude
	return nil
}

// TestGateBeforeAChannelThatRequiresATest: publish's move to prod runs the
// file's tests first (once per version) and the promotion judges what they
// recorded; a failure is named and the channel does not move; a move to a
// channel that needs no test runs none; a version in prod is included in
// latest.
func TestGateBeforeAChannelThatRequiresATest(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	f, err := config.Parse([]byte(`
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
test "smoke" {
  command "nginx" {
    run = "systemctl is-active nginx"
  }
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.0.1"} {
		ref := catalog.Ref{Image: "web", Version: v}
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v, Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat("a", 64)}}); err != nil {
			t.Fatal(err)
		}
		for _, cp := range []catalog.Copy{{Kind: catalog.KindOnprem, ResourceID: "lib/web/" + v, State: catalog.StatePresent},
			{Kind: catalog.KindGalleryVersion, ResourceID: "gv/" + v, Location: "westeurope", State: catalog.StateSucceeded}} {
			if _, err := cat.PutCopy(ctx, ref, cp); err != nil {
				t.Fatal(err)
			}
		}
	}
	var runs []string
	pass := map[string]bool{"1.0.0": false, "1.0.1": true}
	stager := recStager{}
	gate := &FileGate{Catalog: cat, File: f, Stager: stager, By: "test",
		Run: func(ctx context.Context, ref catalog.Ref, tests []testrun.Test) error {
			runs = append(runs, ref.Version+":"+tests[0].Name)
			now := time.Now().UTC()
			check := catalog.TestCheck{Name: "command:nginx", Passed: pass[ref.Version]}
			if !check.Passed {
				check.Output = "exit 3, want 0; output: inactive"
			}
			_, err := cat.AddTestRun(ctx, catalog.TestRun{Ref: ref, Test: tests[0].Name, Runner: "qemu-tcg", Passed: check.Passed, StartedAt: now, FinishedAt: now, Checks: []catalog.TestCheck{check}})
			return err
		}}
	e := &Engine{Catalog: cat, By: "test", Gate: gate}
	move := func(version, channel string) (DestinationResult, error) {
		dr := DestinationResult{Channel: channel}
		return dr, e.moveChannel(ctx, nil, &Plan{Image: "web", Version: version}, &dr)
	}
	if _, err := move("1.0.0", "test"); err != nil || len(runs) != 0 {
		t.Fatalf("test channel: %v, tests run %v (test needs none)", err, runs)
	}
	_, err = move("1.0.0", "prod")
	if !errors.Is(err, catalog.ErrRequirement) || !strings.Contains(err.Error(), "command:nginx") || !strings.Contains(err.Error(), "inactive") {
		t.Fatalf("failed test: %v", err)
	}
	if _, err := move("1.0.0", "prod"); !errors.Is(err, catalog.ErrRequirement) || len(runs) != 1 {
		t.Fatalf("again: %v, tests run %v (once per version)", err, runs)
	}
	if chs, _ := cat.Channels(ctx, "web"); len(chs) != 1 || chs[0].Name != "test" {
		t.Fatalf("channels after a failed gate: %+v", chs)
	}
	if len(stager) != 0 {
		t.Fatalf("a refused version was staged: %v", stager)
	}
	dr, err := move("1.0.1", "prod")
	if err != nil || !dr.Promoted || len(runs) != 2 || runs[1] != "1.0.1:smoke" {
		t.Fatalf("passing test: %+v %v %v", dr, err, runs)
	}
	if exclude, ok := stager["gv/1.0.1"]; !ok || exclude {
		t.Fatalf("1.0.1 in prod is not included in latest: %v", stager)
	}
}
