package testrun

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/testenv"
)

// leftovers lists what a run left in dir, and any qemu still running on it.
func leftovers(t *testing.T, dir string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		t.Errorf("left behind: %s", e.Name())
	}
	out, _ := exec.Command("ps", "-eo", "args").Output()
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, dir) {
			t.Errorf("process left running: %s", l)
		}
	}
}

func TestGuestThatNeverBootsFailsAtTimeout(t *testing.T) {
	testenv.RequireTool(t, "qemu-system-x86_64")
	img := testenv.RequireTool(t, "qemu-img")
	lib := filepath.Join(t.TempDir(), "blank.vhdx")
	if out, err := exec.Command(img, "create", "-q", "-f", "vhdx", lib, "64M").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	tmp := t.TempDir()
	q := &Qemu{TempDir: tmp, Accel: "tcg"}
	start := time.Now()
	res, err := q.Run(context.Background(), Disk{Path: lib, Format: "vhdx"}, "web", "1.0.0", Test{Name: "smoke", BootTimeout: 4 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Fatalf("took %v for a 4s timeout", d)
	}
	f := res.FirstFailure()
	if res.Passed || f == nil || f.Name != "boot" || !strings.Contains(f.Output, "boot timeout of 4s") {
		t.Fatalf("result %+v", res)
	}
	leftovers(t, tmp)
	// the library copy was not written
	if out, err := exec.Command(img, "check", lib).CombinedOutput(); err != nil {
		t.Fatalf("library copy damaged: %s", out)
	}
}

// fakeQemu is a stand-in guest: a shell script given as qemu-system that
// writes what the test says to the report port (the second -serial file:).
func fakeQemu(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "qemu-system-x86_64")
	script := `#!/bin/sh
n=0; rep=""
while [ $# -gt 0 ]; do
  if [ "$1" = -serial ]; then n=$((n+1)); [ $n = 2 ] && rep=${2#file:}; fi
  shift
done
` + body + "\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestHostileReportsFailTheTestNotTheRunner(t *testing.T) {
	testenv.RequireTool(t, "sh")
	img := testenv.RequireTool(t, "qemu-img")
	lib := filepath.Join(t.TempDir(), "lib.vhdx")
	if out, err := exec.Command(img, "create", "-q", "-f", "vhdx", lib, "16M").CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	zeros := strings.Repeat("0", 64)
	cases := []struct{ name, body, want string }{
		{"oversized", `printf '==IMGPIPE-REPORT v1 len=99999999 sha256=` + zeros + `==\n' > "$rep"`, "oversized"},
		{"bad checksum", `printf '==IMGPIPE-REPORT v1 len=2 sha256=` + zeros + `==\n{}\n==IMGPIPE-END==\n' > "$rep"`, "checksum mismatch"},
		{"garbage json", `printf '==IMGPIPE-REPORT v1 len=5 sha256=3a5a1c1e6ed3e5a3e0e6c5e5d1f0d4e2b0c4a39a07cfcfe8ffa1b3e4b1b7cd5f==\nxxxxx\n==IMGPIPE-END==\n' > "$rep"`, "checksum"},
		{"flood", `head -c $((70*1024*1024)) /dev/zero | tr '\0' 'x' > "$rep"; sleep 30`, "more than"},
		{"nothing then exit", `exit 3`, "qemu stopped"},
		{"hang", `sleep 60`, "boot timeout"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tmp := t.TempDir()
			q := &Qemu{System: fakeQemu(t, c.body), TempDir: tmp, Accel: "tcg"}
			res, err := q.Run(context.Background(), Disk{Path: lib}, "web", "1.0.0",
				Test{Name: "smoke", BootTimeout: 3 * time.Second, DriftClean: true})
			if err != nil {
				t.Fatal(err)
			}
			f := res.FirstFailure()
			if res.Passed || f == nil || !strings.Contains(f.Output, c.want) {
				t.Fatalf("result %+v, want a failure saying %q", res, c.want)
			}
			leftovers(t, tmp)
		})
	}
}

func TestVerdicts(t *testing.T) {
	spec := &agent.TestSpec{Test: "smoke", Nonce: "0123456789abcdef", DriftClean: true,
		Commands: []agent.TestCommand{{Name: "ok", Run: "true", TimeoutSec: 1}, {Name: "bad", Run: "false", TimeoutSec: 1}}}
	rep := &agent.TestReport{Test: "smoke", Nonce: "0123456789abcdef",
		Drift:    agent.Report{Drifted: true, Changes: []agent.Change{{Area: "file", Kind: "changed", Name: "etc/motd"}}},
		Commands: []agent.CommandResult{{Name: "ok"}, {Name: "bad", ExitCode: 1, Output: "boom"}}}
	v := Verdicts(spec, rep)
	want := map[string]string{"report": "", "drift": "changed etc/motd", "command:ok": "", "command:bad": "exit 1, want 0; output: boom"}
	for _, c := range v {
		w, ok := want[c.Name]
		if !ok || (w == "") != c.Passed || !strings.Contains(c.Output, w) {
			t.Errorf("check %+v, want output %q", c, w)
		}
	}
	rep.Nonce = "ffffffffffffffff"
	if v := Verdicts(spec, rep); len(v) != 1 || v[0].Passed || !strings.Contains(v[0].Output, "stale") {
		t.Fatalf("a stale report was accepted: %+v", v)
	}
}
