package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/testenv"
)

// repackageTemplate is the Packer template rebuilds use in these tests.
func repackageTemplate(t *testing.T) string {
	t.Helper()
	p, err := filepath.Abs("../../examples/packer/repackage/repackage.json")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// fatDisk writes a raw disk with a FAT file system at 1 MiB (what the
// repackage template changes a file on).
func fatDisk(t *testing.T, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, make([]byte, 8<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.vfat", "--offset", "2048", path, "4096").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.vfat: %v\n%s", err, out)
	}
}

// A rebuild whose test fails stops the loop: the version is built (Packer),
// published to the library and tested (a boot that never comes), then not
// promoted and not rolled out; the stop is recorded with its reason, and
// the test's failure is an event.
func TestLoopFailingTestStops(t *testing.T) {
	for _, tool := range []string{"packer", "mcopy", "mkfs.vfat", "qemu-system-x86_64", "qemu-img"} {
		testenv.RequireTool(t, tool)
	}
	ctx := context.Background()
	dir := t.TempDir()
	loc := filepath.Join(dir, "catalog.db")
	first := filepath.Join(dir, "build", "api-1.0.0.raw")
	fatDisk(t, first)
	file := filepath.Join(dir, "pipeline.hcl")
	mustWrite(t, file, fmt.Appendf(nil, `
image "api" {
  os_type           = "Linux"
  hyperv_generation = "V1"
  packer {
    template = %q
    vars = {
      previous   = %q
      output     = %q
      unbootable = "true"
    }
    artifact = %q
  }
}
onprem "lab" {
  library = %q
  channel = "test"
}
test "boots" {
  boot_timeout = "5s"
  boot_marker  = "imgpipe-test-image: booted"
}
rebuild {
  on_drift {
    hosts = 1
  }
}
catalog {
  url = %q
}
`, repackageTemplate(t), first, filepath.Join(dir, "build", "api-next.raw"), filepath.Join(dir, "build", "api-next.raw"),
		filepath.Join(dir, "library"), loc))
	if out, err := runCLI(t, "publish", "-f", file, "--yes", "--version", "1.0.0", "--source", first); err != nil {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if err := cat.SetRequirements(ctx, "api", "prod", []catalog.Requirement{{Kind: catalog.KindOnprem}}); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "promote", "api", "1.0.0", "--to", "prod", "--catalog", loc); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	if err := cat.ReportHost(ctx, catalog.Host{Name: "api-01", Platform: catalog.PlatformOnprem, Image: "api", Version: "1.0.0",
		DriftSummary: json.RawMessage(`{"source":"agent","drifted":true,"summary":{"files_changed":1}}`)}); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "reconcile", "-f", file, "--accel", "tcg", "-o", "json")
	if exitStatus(err) != 1 {
		t.Fatalf("reconcile of a rebuild that fails its test: exit %d (%v)\n%s", exitStatus(err), err, out)
	}
	var res struct {
		Outcomes []struct {
			State, Version, Stopped string
			Promoted                string
			Rollout                 int64 `json:"rollout_id"`
		}
	}
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil || len(res.Outcomes) != 1 {
		t.Fatalf("%v\n%s", err, out)
	}
	o := res.Outcomes[0]
	if o.State != catalog.RebuildFailed || o.Version != "1.0.1" || o.Promoted != "" || o.Rollout != 0 ||
		!strings.Contains(o.Stopped, "api@1.0.1 failed its test: test boots failed") {
		t.Fatalf("outcome %+v", o)
	}
	chs, _ := cat.Channels(ctx, "api")
	for _, ch := range chs {
		if ch.Name == "prod" && ch.Version != "1.0.0" {
			t.Fatalf("prod moved to %s", ch.Version)
		}
	}
	if rs, _ := cat.Rollouts(ctx, "api", 0); len(rs) != 0 {
		t.Fatalf("rollouts %+v", rs)
	}
	runs, _ := cat.TestRuns(ctx, catalog.Ref{Image: "api", Version: "1.0.1"})
	if len(runs) != 1 || runs[0].Passed {
		t.Fatalf("test runs %+v", runs)
	}
	var kinds []string
	rows, _ := cat.DB().Query("SELECT type FROM event_outbox ORDER BY id")
	for rows.Next() {
		var k string
		rows.Scan(&k)
		kinds = append(kinds, strings.TrimPrefix(k, "dev.imgpipe."))
	}
	rows.Close()
	got := strings.Join(kinds, " ")
	for _, want := range []string{"build.completed", "publish.completed", "test.completed", "reconcile.decision"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %s event: %s", want, got)
		}
	}
	if strings.Count(got, "promotion") != 3 { // 1.0.0 to test and prod, 1.0.1 to test (the library's channel); never to prod
		t.Errorf("promotion events: %s", got)
	}
	// the next round stays stopped
	if out, err := runCLI(t, "reconcile", "-f", file, "--dry-run"); err != nil || !strings.Contains(out, "stopped") || !strings.Contains(out, "failed its test") {
		t.Fatalf("after the failure: %v\n%s", err, out)
	}
}
