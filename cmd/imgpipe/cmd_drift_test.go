package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// exitStatus is the status main would exit with after err (the exit-code table).
func exitStatus(err error) int { return exitCode(err, false) }

func TestBaselineCaptureAndDriftCheckCLI(t *testing.T) {
	root := t.TempDir()
	for _, f := range []string{"etc/app.conf", "etc/ssh/sshd_config", "usr/bin/tool"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte("content of "+f+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)

	tests := []struct {
		name   string
		args   []string
		code   int
		expect []string
	}{
		{"identity required", []string{"baseline", "capture", "--root", root}, 1, nil},
		{"bad hash", []string{"baseline", "capture", "--root", root, "--no-identity", "--hash", "md5"}, 1, nil},
		{"capture", []string{"baseline", "capture", "--root", root, "--image", "web", "--version", "1.2.3", "--build-id", "42", "--path", "etc", "--path", "usr"},
			0, []string{"identity: web 1.2.3", "baseline: 8 entries (4 hashed"}},
		{"show", []string{"baseline", "show", filepath.Join(root, "etc/imgpipe/baseline.bin")}, 0, []string{"image:      web 1.2.3 (build 42", "paths:      [etc usr]"}},
		{"no drift", []string{"drift", "check", "--root", root}, 0, []string{"no drift: 0 added, 0 removed, 0 changed"}},
		{"missing baseline", []string{"drift", "check", "--root", root, "--baseline", filepath.Join(root, "nope")}, 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, tc.args...)
			if got := exitStatus(err); got != tc.code {
				t.Fatalf("exit %d (%v), want %d; output:\n%s", got, err, tc.code, out)
			}
			for _, e := range tc.expect {
				if !strings.Contains(out, e) {
					t.Errorf("output lacks %q:\n%s", e, out)
				}
			}
		})
	}
	if osr, _ := os.ReadFile(filepath.Join(root, "etc/os-release")); string(osr) != "ID=debian\nIMAGE_ID=web\nIMAGE_VERSION=1.2.3\n" {
		t.Errorf("os-release: %q", osr)
	}

	time.Sleep(10 * time.Millisecond)
	os.WriteFile(filepath.Join(root, "etc/app.conf"), []byte("edited\n"), 0o644)
	os.Chmod(filepath.Join(root, "usr/bin/tool"), 0o755)
	for _, quick := range []bool{false, true} {
		args := []string{"drift", "check", "--root", root, "-o", "json"}
		if quick {
			args = append(args, "--quick")
		}
		out, err := runCLI(t, args...)
		if exitStatus(err) != 2 {
			t.Fatalf("drift check after changes: exit %d (%v), want 2\n%s", exitStatus(err), err, out)
		}
		var r struct {
			Drifted bool `json:"drifted"`
			Files   []struct {
				Path    string   `json:"path"`
				Kind    string   `json:"kind"`
				Changed []string `json:"changed"`
			} `json:"files"`
			Identity struct{ Image, Version string }
		}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("json output: %v\n%s", err, out)
		}
		got := ""
		for _, f := range r.Files {
			got += f.Kind + " " + f.Path + " " + strings.Join(f.Changed, ",") + ";"
		}
		if want := "changed etc/app.conf content,size;changed usr/bin/tool mode;"; got != want || !r.Drifted || r.Identity.Image != "web" {
			t.Errorf("quick=%v: files %q, want %q (report %+v)", quick, got, want, r)
		}
	}
	out, err := runCLI(t, "drift", "check", "--root", root, "--ignore", "etc/app.conf", "--ignore", "usr/bin/**")
	if exitStatus(err) != 0 {
		t.Errorf("with ignores: exit %d\n%s", exitStatus(err), out)
	}
}
