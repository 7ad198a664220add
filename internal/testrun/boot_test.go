package testrun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/testenv"
)

// tinyImages builds scripts/test-image/build-tiny.sh images with a static
// imgpipe agent: a good one and one changed after its baseline was captured,
// both converted to VHDX as the on-prem library stores them.
func tinyImages(t *testing.T) (good, drifted string) {
	t.Helper()
	if runtime.GOOS != "linux" || runtime.GOARCH != "amd64" {
		t.Skip("the tiny test image is linux/amd64")
	}
	for _, tool := range []string{"qemu-system-x86_64", "qemu-img", "busybox", "cpio", "sfdisk", "mkfs.vfat", "mcopy", "syslinux"} {
		testenv.RequireTool(t, tool)
	}
	if m, _ := filepath.Glob("/boot/vmlinuz-*"); len(m) == 0 {
		testenv.Missing(t, "no kernel in /boot (apt-get install linux-image-amd64)")
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "imgpipe")
	build := exec.Command("go", "build", "-ldflags", "-s -w", "-o", bin, "./cmd/imgpipe")
	build.Dir = repo
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build a static imgpipe for the guest: %v: %s", err, out)
	}
	mk := func(name string, extra ...string) string {
		raw := filepath.Join(dir, name+".raw")
		args := append([]string{raw, bin, "tiny", "1.0.0"}, extra...)
		if out, err := exec.Command(filepath.Join(repo, "scripts/test-image/build-tiny.sh"), args...).CombinedOutput(); err != nil {
			t.Fatalf("build-tiny.sh %v: %v: %s", extra, err, out)
		}
		vhdx := filepath.Join(dir, name+".vhdx")
		if out, err := exec.Command("qemu-img", "convert", "-O", "vhdx", raw, vhdx).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		return vhdx
	}
	return mk("good"), mk("drifted", "--drift-after-capture")
}

// TestBootTinyImage is the end-to-end test of the gate on a real boot: a
// good image passes; an image changed after its baseline was captured fails
// naming the drifted file; a declared command exiting 1 fails with its
// output. Two boots, in parallel (about a minute each without KVM).
func TestBootTinyImage(t *testing.T) {
	if testing.Short() && !testenv.InCI() {
		t.Skip("boots two VMs (-short)")
	}
	good, drifted := tinyImages(t)
	timeout := 10 * time.Minute
	ok := agent.TestCommand{Name: "busybox", Run: "busybox | head -n 1", TimeoutSec: 60}
	bad := agent.TestCommand{Name: "service-up", Run: "echo 'nginx: not running' >&2; exit 1", TimeoutSec: 60}
	t.Run("good", func(t *testing.T) {
		t.Parallel()
		tmp := t.TempDir()
		q := &Qemu{TempDir: tmp, Accel: bootAccel()}
		start := time.Now()
		res, err := q.Run(context.Background(), Disk{Path: good, Format: "vhdx"}, "tiny", "1.0.0",
			Test{Name: "smoke", BootTimeout: timeout, BootMarker: "imgpipe-test-image: booted", DriftClean: true, Commands: []agent.TestCommand{ok}})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: passed=%v in %v", res.Runner, res.Passed, time.Since(start).Round(time.Second))
		if !res.Passed {
			t.Fatalf("good image failed: %+v\nconsole:\n%s", res.Checks, res.ConsoleTail)
		}
		if c := res.Checks[len(res.Checks)-1]; c.Name != "command:busybox" || !strings.Contains(c.Output, "BusyBox") {
			t.Fatalf("command output not carried back: %+v", c)
		}
		leftovers(t, tmp)
	})
	t.Run("drifted and failing command", func(t *testing.T) {
		t.Parallel()
		tmp := t.TempDir()
		q := &Qemu{TempDir: tmp, Accel: bootAccel()}
		res, err := q.Run(context.Background(), Disk{Path: drifted, Format: "vhdx"}, "tiny", "1.0.0",
			Test{Name: "smoke", BootTimeout: timeout, DriftClean: true, Commands: []agent.TestCommand{ok, bad}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Passed {
			t.Fatalf("drifted image passed: %+v", res.Checks)
		}
		got := map[string]Check{}
		for _, c := range res.Checks {
			got[c.Name] = c
		}
		if c := got["drift"]; c.Passed || !strings.Contains(c.Output, "etc/motd") {
			t.Errorf("drift check %+v does not name etc/motd\nconsole:\n%s", c, res.ConsoleTail)
		}
		if c := got["command:service-up"]; c.Passed || !strings.Contains(c.Output, "exit 1") || !strings.Contains(c.Output, "nginx: not running") {
			t.Errorf("failing command %+v", c)
		}
		if c := got["command:busybox"]; !c.Passed {
			t.Errorf("passing command %+v", c)
		}
		leftovers(t, tmp)
	})
}

// bootAccel is TCG unless IMGPIPE_TEST_ACCEL says otherwise: this project's
// machines have a /dev/kvm that opens but runs no guest (the boot hangs).
func bootAccel() string {
	if a := os.Getenv("IMGPIPE_TEST_ACCEL"); a != "" {
		return a
	}
	return "tcg"
}
