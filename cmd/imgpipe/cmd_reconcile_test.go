package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
)

// reconcileFixture: web@1.0.0 in prod on 10 hosts, 4 of them drifted; the
// policy rebuilds at 3 drifted hosts.
func reconcileFixture(t *testing.T, policy string) (dir, loc, file string) {
	t.Helper()
	ctx := context.Background()
	dir = t.TempDir()
	loc = filepath.Join(dir, "catalog.db")
	file = filepath.Join(dir, "pipeline.hcl")
	os.WriteFile(filepath.Join(dir, "disk.vhdx"), []byte("not read"), 0o644)
	hcl := fmt.Sprintf(`
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
onprem "lib" {
  library = %q
}
catalog {
  url = %q
}
%s
`, filepath.Join(dir, "library"), loc, policy)
	if err := os.WriteFile(file, []byte(hcl), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if err := cat.SetRequirements(ctx, "web", "prod", []catalog.Requirement{{Kind: catalog.KindArtifact}}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.PutCopy(ctx, catalog.Ref{Image: "web", Version: "1.0.0"}, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: "/b/web.vhdx", State: catalog.StatePresent}); err != nil {
		t.Fatal(err)
	}
	if _, err := cat.Promote(ctx, catalog.PromoteRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Channel: "prod", By: "t"}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		sum := `{"source":"agent","drifted":false,"summary":{}}`
		if i < 4 {
			sum = `{"source":"agent","drifted":true,"summary":{"files_changed":2}}`
		}
		if err := cat.ReportHost(ctx, catalog.Host{Name: fmt.Sprintf("h%d", i), Platform: catalog.PlatformOnprem, Image: "web", Version: "1.0.0", DriftSummary: json.RawMessage(sum)}); err != nil {
			t.Fatal(err)
		}
	}
	return dir, loc, file
}

func catalogCounts(t *testing.T, loc string) map[string]int {
	t.Helper()
	cat, err := catalog.Open(context.Background(), loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	out := map[string]int{}
	for _, tb := range []string{"reconcile_decisions", "reconcile_drift", "event_outbox", "runs", "promotions", "versions", "copies", "image_locks", "hosts"} {
		var n int
		if err := cat.DB().QueryRow("SELECT COUNT(*) FROM " + tb).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out[tb] = n
	}
	return out
}

func TestReconcileDryRunChangesNothing(t *testing.T) {
	dir, loc, file := reconcileFixture(t, `rebuild {
  on_drift {
    hosts = 3
  }
}`)
	before := catalogCounts(t, loc)
	out, err := runCLI(t, "reconcile", "-f", file, "--dry-run", "-o", "json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var got struct {
		DryRun    bool `json:"dry_run"`
		Decisions []struct{ Image, Decision, Trigger, Reason string }
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if !got.DryRun || len(got.Decisions) != 1 || got.Decisions[0].Decision != "rebuild" || got.Decisions[0].Trigger != "drift" ||
		got.Decisions[0].Reason != "4 of 10 prod hosts drifted: rebuild" {
		t.Fatalf("%s", out)
	}
	out, err = runCLI(t, "reconcile", "-f", file, "--dry-run")
	if err != nil || !strings.Contains(out, "4 of 10 prod hosts drifted: rebuild") || !strings.Contains(out, "dry run: nothing was recorded") {
		t.Fatalf("%v\n%s", err, out)
	}
	after := catalogCounts(t, loc)
	for k, n := range before {
		if after[k] != n {
			t.Errorf("%s: %d rows after the dry run, %d before", k, after[k], n)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "library")); !os.IsNotExist(err) {
		t.Errorf("the dry run touched the library: %v", err)
	}
}

// Without a packer block there is no source to rebuild from: the rebuild
// fails, stops the loop, promotes nothing, and the next run stays stopped.
func TestReconcileFailedRebuildStops(t *testing.T) {
	_, loc, file := reconcileFixture(t, `rebuild {
  on_drift {
    hosts = 3
  }
}`)
	out, err := runCLI(t, "reconcile", "-f", file)
	if err == nil || !strings.Contains(out, "the rebuild of web failed to build: image \"web\" has no packer block") {
		t.Fatalf("%v\n%s", err, out)
	}
	out, err = runCLI(t, "reconcile", "-f", file, "-o", "json")
	if err != nil || !strings.Contains(out, `"decision": "stopped"`) {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	out, err = runCLI(t, "reconcile", "history", "web", "--catalog", loc)
	if err != nil || !strings.Contains(out, "stopped") || !strings.Contains(out, "rebuild") || !strings.Contains(out, "failed") {
		t.Fatalf("history: %v\n%s", err, out)
	}
	cat, _ := catalog.Open(context.Background(), loc)
	defer cat.Close()
	chs, _ := cat.Channels(context.Background(), "web")
	if len(chs) != 1 || chs[0].Version != "1.0.0" {
		t.Fatalf("channels %+v", chs)
	}
	rebuilds, _ := cat.Decisions(context.Background(), catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionRebuild})
	if len(rebuilds) != 1 || rebuilds[0].State != catalog.RebuildFailed {
		t.Fatalf("rebuilds %+v", rebuilds)
	}
	var evs int
	cat.DB().QueryRow("SELECT COUNT(*) FROM event_outbox WHERE type = 'dev.imgpipe.reconcile.decision'").Scan(&evs)
	if evs != 2 { // the claimed rebuild, the stop
		t.Fatalf("%d reconcile events", evs)
	}
	if out, err := runCLI(t, "reconcile", "resume", "web", "-f", file, "--by", "alice"); err != nil || !strings.Contains(out, "resumed by alice") {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	// resumed: the loop runs again, the failed rebuild still counts for the cool-down
	if out, err := runCLI(t, "reconcile", "-f", file, "--dry-run"); err != nil || !strings.Contains(out, "4 of 10 prod hosts drifted; cool-down until ") || strings.Contains(out, "stopped") {
		t.Fatalf("after resume: %v\n%s", err, out)
	}
}
