package testrun

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
)

func TestPrepare(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(file, []byte(`
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
test "smoke" {
  boot_timeout = "2m"
}
test "deep" {
  boot_timeout = "5m"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	ref := catalog.Ref{Image: "app", Version: "1.0.0"}
	for _, c := range []struct {
		name  string
		o     Options
		tests int
		err   string
	}{
		{name: "every test of the image", o: Options{File: file, Runner: "qemu"}, tests: 2},
		{name: "one test", o: Options{File: file, Runner: "hyperv", Only: "deep"}, tests: 1},
		{name: "no file", o: Options{Runner: "qemu"}, err: "give the pipeline file with -f"},
		{name: "an unknown runner", o: Options{File: file, Runner: "vmware"}, err: `--runner "vmware": use qemu or hyperv`},
		{name: "reports without hyperv", o: Options{File: file, Runner: "qemu", Reports: []string{"r"}}, err: "add --runner hyperv"},
		{name: "a test the file does not declare", o: Options{File: file, Runner: "qemu", Only: "nope"}, err: `declares no test "nope"`},
		{name: "a signing key that is not there", o: Options{File: file, Runner: "qemu", SignKey: filepath.Join(dir, "none.pem")}, err: "none.pem"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p, err := Prepare(ref, c.o)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || len(p.Tests) != c.tests || p.Config == nil || p.Ref != ref {
				t.Fatalf("%+v %v; want %d tests", p, err, c.tests)
			}
		})
	}
}

func TestPassedAndTestedStates(t *testing.T) {
	if !Passed(nil) || !Passed([]Result{{Passed: true}}) || Passed([]Result{{Passed: true}, {Test: "b"}}) {
		t.Fatal("Passed: every result must pass")
	}
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, v := range []string{"1.0.0", "1.0.1", "1.0.2"} {
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "app", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	catalogtest.Tested(t, cat, catalog.Ref{Image: "app", Version: "1.0.0"})
	if _, err := cat.AddTestRun(ctx, catalog.TestRun{Ref: catalog.Ref{Image: "app", Version: "1.0.1"}, Test: "smoke", Runner: "qemu-tcg",
		Checks: []catalog.TestCheck{{Name: "boot", Output: "boot timeout"}}}); err != nil {
		t.Fatal(err)
	}
	vs, err := cat.Versions(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	got, err := TestedStates(ctx, cat, vs)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"1.0.0": "passed", "1.0.1": "failed", "1.0.2": ""}
	for i, v := range vs {
		if got[i] != want[v.Version] {
			t.Errorf("%s: tested %q, want %q", v.Version, got[i], want[v.Version])
		}
	}
}
