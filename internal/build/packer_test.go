package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"imgpipe/internal/testenv"
)

// diskTemplate writes a small "disk" with known bytes from a shell-local
// provisioner on the null builder, declares it with artifice and lists it
// with the manifest post-processor.
const diskTemplate = `
variable "out" {
  type    = string
  default = "out"
}
variable "fill" {
  type    = string
  default = "A"
}
source "null" "disk" {
  communicator = "none"
}
build {
  sources = ["source.null.disk"]
  provisioner "shell-local" {
    inline = ["mkdir -p ${var.out}", "head -c 1048576 /dev/zero | tr '\\000' '${var.fill}' > ${var.out}/disk.raw", "echo wrote the disk"]
  }
  post-processors {
    post-processor "artifice" {
      files = ["${var.out}/disk.raw"]
    }
    post-processor "manifest" {
      output      = "${var.out}/manifest.json"
      custom_data = {
        generation = "V1"
        os         = "linux"
      }
    }
  }
}
`

func writeTemplate(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-C", dir, "-c", "user.name=t", "-c", "user.email=t@example.org"}, args...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestRunFindsArtifactAndProvenance(t *testing.T) {
	testenv.RequireTool(t, "packer")
	testenv.RequireTool(t, "git")
	dir := t.TempDir()
	tmpl := writeTemplate(t, dir, "disk.pkr.hcl", diskTemplate)
	git(t, dir, "init", "-q")
	git(t, dir, "add", ".")
	git(t, dir, "commit", "-q", "-m", "template")
	head := git(t, dir, "rev-parse", "HEAD")

	var mu sync.Mutex
	var ui []string
	res, err := Run(context.Background(), Options{
		Template: tmpl, WorkDir: dir, Manifest: "out/manifest.json",
		Vars: map[string]string{"fill": "B"},
		OnLine: func(l Line) {
			if _, text, ok := l.UI(); ok {
				mu.Lock()
				ui = append(ui, text)
				mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.Join(ui, "\n"), "wrote the disk") {
		t.Errorf("progress did not stream the provisioner's output: %q", ui)
	}
	want := sha256.Sum256([]byte(strings.Repeat("B", 1<<20)))
	if len(res.Artifacts) != 1 {
		t.Fatalf("artifacts = %+v", res.Artifacts)
	}
	a := res.Artifacts[0]
	if a.Path != filepath.Join(dir, "out", "disk.raw") || a.Size != 1<<20 || a.SHA256 != hex.EncodeToString(want[:]) {
		t.Errorf("artifact = %+v", a)
	}
	if a.Format != "raw" || a.Generation != "V1" || a.GenerationFrom != "custom_data" || a.OS != "linux" || a.BuilderType != "null" || a.Build != "disk" {
		t.Errorf("artifact description = %+v", a)
	}
	p := res.Provenance
	tsum := sha256.Sum256([]byte(diskTemplate))
	if len(p.TemplateFiles) != 1 || p.TemplateFiles[0].SHA256 != hex.EncodeToString(tsum[:]) {
		t.Errorf("template files = %+v", p.TemplateFiles)
	}
	if p.GitCommit != head || p.GitDirty || p.GitPath != "disk.pkr.hcl" {
		t.Errorf("git provenance = %q dirty=%v path=%q, want %q clean", p.GitCommit, p.GitDirty, p.GitPath, head)
	}
	if !strings.HasPrefix(p.PackerVersion, "1.") || p.PackerRunUUID == "" || p.Finished.Before(p.Started) {
		t.Errorf("provenance = %+v", p)
	}
	if len(p.VarNames) != 1 || p.VarNames[0] != "fill" {
		t.Errorf("var names = %v", p.VarNames)
	}

	// A second run appends to the manifest; only the new run's artifact is
	// reported. An edit under the template's directory marks it dirty.
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("uncommitted"), 0o644)
	res2, err := Run(context.Background(), Options{Template: tmpl, WorkDir: dir, Manifest: "out/manifest.json",
		Vars: map[string]string{"out": "out2"}})
	if err == nil || !strings.Contains(err.Error(), "no artifact files") {
		// out2/manifest.json is where this run wrote its manifest, so the
		// out/manifest.json we named is stale: Run falls back to Packer's
		// own artifact list, which still finds the file.
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(res2.Artifacts) != 1 || res2.Artifacts[0].Path != filepath.Join(dir, "out2", "disk.raw") || res2.Provenance.ManifestPath != "" {
		t.Errorf("fallback to Packer's artifact list: %+v", res2)
	}
	if !res2.Provenance.GitDirty {
		t.Error("uncommitted file under the template directory not reported as dirty")
	}
}

func TestRunReportsPackerErrors(t *testing.T) {
	testenv.RequireTool(t, "packer")
	for _, tc := range []struct {
		name, body string
		vars       map[string]string
		want       string
	}{
		{"failing provisioner", `
source "null" "disk" {
  communicator = "none"
}
build {
  sources = ["source.null.disk"]
  provisioner "shell-local" {
    inline = ["echo 'partition table, damaged' >&2; exit 3"]
  }
}`, nil, "null.disk: Script exited with non-zero exit status: 3"},
		{"bad argument", `
source "null" "disk" {
  bogus = 1
}
build {
  sources = ["source.null.disk"]
}`, nil, `An argument named "bogus" is not expected here`},
		{"undeclared variable", `
source "null" "disk" {
  communicator = "none"
}
build {
  sources = ["source.null.disk"]
}`, map[string]string{"nope": "x"}, `A "nope" variable was passed in the command line but was not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tmpl := writeTemplate(t, dir, "t.pkr.hcl", tc.body)
			_, err := Run(context.Background(), Options{Template: tmpl, WorkDir: dir, Vars: tc.vars})
			var pe *Error
			if !errors.As(err, &pe) {
				t.Fatalf("Run = %v, want *build.Error", err)
			}
			if pe.ExitCode != 1 || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v (exit %d), want Packer's message %q", err, pe.ExitCode, tc.want)
			}
		})
	}
	t.Run("no artifacts", func(t *testing.T) {
		dir := t.TempDir()
		tmpl := writeTemplate(t, dir, "t.pkr.hcl", "source \"null\" \"x\" {\n  communicator = \"none\"\n}\nbuild {\n  sources = [\"source.null.x\"]\n}\n")
		_, err := Run(context.Background(), Options{Template: tmpl, WorkDir: dir})
		if err == nil || !strings.Contains(err.Error(), "no artifact files") {
			t.Errorf("Run = %v", err)
		}
	})
	t.Run("missing template", func(t *testing.T) {
		_, err := Run(context.Background(), Options{Template: filepath.Join(t.TempDir(), "nope.pkr.hcl")})
		if err == nil || !strings.Contains(err.Error(), "template") {
			t.Errorf("Run = %v", err)
		}
	})
}

func TestRunCancelled(t *testing.T) {
	testenv.RequireTool(t, "packer")
	dir := t.TempDir()
	tmpl := writeTemplate(t, dir, "t.pkr.hcl", `
source "null" "disk" {
  communicator = "none"
}
build {
  sources = ["source.null.disk"]
  provisioner "shell-local" {
    inline = ["echo started", "sleep 60"]
  }
}`)
	ctx, cancel := context.WithCancel(context.Background())
	_, err := Run(ctx, Options{Template: tmpl, WorkDir: dir, OnLine: func(l Line) {
		if _, text, ok := l.UI(); ok && strings.Contains(text, "started") {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v", err)
	}
}
