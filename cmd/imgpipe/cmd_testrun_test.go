package main

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/testenv"
)

// TestTestHyperVRunner: imgpipe test --runner hyperv prints the script for
// the version's library copy (as the host sees the share), and --report
// records what the script saved, judged against the file's test.
func TestTestHyperVRunner(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.db")
	variantDisk(t, filepath.Join(dir, "disk.raw"), "hyperv")
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, []byte(`
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
onprem "lab" {
  library = "library"
  channel = "test"
}
test "smoke" {
  boot_timeout = "2m"
  command "uname" {
    run = "uname -s"
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	mustCLI(t, "publish", "-f", pipeline, "--catalog", cat)
	script := mustCLI(t, "test", "app", "1.0.0", "-f", pipeline, "--catalog", cat, "--runner", "hyperv", "--host-path", `\\fs01\images`, "--work-dir", `D:\tests`)
	for _, want := range []string{
		`$ParentPath = '\\fs01\images\app\1.0.0\`,
		"New-VHD -Path $Child -ParentPath $ParentPath -Differencing",
		"New-VM -Name $Name -Generation 1 ",
		"$WorkDir    = 'D:\\tests'",
		"Invoke-ImgpipeTest -Test 'smoke' -Nonce '",
		"-TimeoutSeconds 120 ",
	} {
		if !strings.Contains(script, want) {
			t.Errorf("script lacks %q:\n%s", want, script)
		}
	}
	// what the host saves: the spec the script attached, and the guest's report
	m := regexp.MustCompile(`(?m)^Invoke-ImgpipeTest -Test 'smoke' -Nonce '([0-9a-f]+)' -TimeoutSeconds \d+ -Spec '([^']+)'$`).FindStringSubmatch(script)
	if m == nil {
		t.Fatalf("no test call in the script:\n%s", script)
	}
	frame, _ := base64.StdEncoding.DecodeString(m[2])
	base := filepath.Join(dir, "imgpipe-test-app-1.0.0-smoke-"+m[1][:8])
	os.WriteFile(base+".spec", frame, 0o644)
	now := time.Now().UTC().Truncate(time.Second)
	report := func(exit int) {
		b, err := agent.EncodeFrame(agent.FrameReport, &agent.TestReport{Schema: agent.TestReportSchema, Test: "smoke", Nonce: m[1], Host: "hv-test", StartedAt: now, FinishedAt: now.Add(20 * time.Second),
			Drift:    agent.Report{Schema: agent.Schema, Host: "hv-test", Platform: "onprem", Image: "app", Version: "1.0.0", Depth: "full", CheckedAt: now},
			Commands: []agent.CommandResult{{Name: "uname", ExitCode: exit, Output: "Linux"}}})
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(base+".report", b, 0o644)
	}
	report(1)
	out, err := runCLI(t, "test", "app", "1.0.0", "-f", pipeline, "--catalog", cat, "--runner", "hyperv", "--report", base+".report")
	if exitStatus(err) != exitNegative || !strings.Contains(out, "test smoke of app@1.0.0: FAILED (hyperv, 20s)") || !strings.Contains(out, "FAIL command:uname: exit 1, want 0") {
		t.Fatalf("failing report: %v\n%s", err, out)
	}
	report(0)
	if out := mustCLI(t, "test", "app", "1.0.0", "-f", pipeline, "--catalog", cat, "--runner", "hyperv", "--report", base+".report"); !strings.Contains(out, "PASSED (hyperv") {
		t.Fatalf("passing report:\n%s", out)
	}
	if out := mustCLI(t, "versions", "app", "--catalog", cat); !strings.Contains(out, "passed") {
		t.Errorf("versions after a passing Hyper-V test:\n%s", out)
	}
	if out, err := runCLI(t, "test", "app", "1.0.0", "-f", pipeline, "--catalog", cat, "--report", base+".report"); err == nil || !strings.Contains(err.Error(), "--runner hyperv") {
		t.Errorf("--report without --runner hyperv: %v\n%s", err, out)
	}
}

// TestPublishGatesProd: publish to an on-prem channel that requires a
// passing test (prod) boots the version with the file's tests first; a guest
// that never answers fails at its boot timeout, the test run is recorded and
// the channel does not move, the refusal naming the failed check.
func TestPublishGatesProd(t *testing.T) {
	testenv.RequireTool(t, "qemu-system-x86_64")
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.db")
	variantDisk(t, filepath.Join(dir, "disk.raw"), "gate")
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, []byte(`
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
onprem "lab" {
  library = "library"
  channel = "prod"
}
channel "prod" {
  requires = ["onprem", "tested"]
}
test "smoke" {
  boot_timeout = "2s"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "publish", "-f", pipeline, "--catalog", cat)
	if err == nil || !strings.Contains(err.Error(), `test "smoke" failed its check boot`) || !strings.Contains(err.Error(), "boot timeout") {
		t.Fatalf("publish to prod with a guest that never boots: %v\n%s", err, out)
	}
	show := mustCLI(t, "show", "app", "1.0.0", "--catalog", cat)
	if !strings.Contains(show, "smoke FAILED") || strings.Contains(show, "prod") {
		t.Errorf("show after a failed gate (a failed test, no prod):\n%s", show)
	}
}
