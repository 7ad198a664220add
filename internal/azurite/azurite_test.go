package azurite

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPinnedVersionMatchesPackageJSON(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "package.json"))
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct {
		Dependencies, DevDependencies map[string]string
	}
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	v := pkg.Dependencies["azurite"] + pkg.DevDependencies["azurite"]
	if v != PinnedVersion {
		t.Fatalf("package.json pins azurite %q, PinnedVersion is %q", v, PinnedVersion)
	}
}

func fakeExe(t *testing.T, dir, name string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFindOrder: $IMGPIPE_AZURITE, then PATH, then node_modules above the
// working directory, then npm exec of the pinned version; without any,
// the error says how to install it.
func TestFindOrder(t *testing.T) {
	tmp := t.TempDir()
	nodeDir := filepath.Join(tmp, "node")
	fakeExe(t, nodeDir, "node")
	pathDir := filepath.Join(tmp, "path")
	onPath := fakeExe(t, pathDir, "azurite-blob")
	project := filepath.Join(tmp, "project")
	inModules := fakeExe(t, filepath.Join(project, "node_modules", ".bin"), "azurite-blob")
	sub := filepath.Join(project, "sub", "dir")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	explicit := fakeExe(t, filepath.Join(tmp, "explicit"), "azurite-blob")
	npmDir := filepath.Join(tmp, "npm")
	npm := fakeExe(t, npmDir, "npm")
	empty := t.TempDir()
	t.Chdir(sub)

	for _, tc := range []struct {
		name, env, path, want, source string
	}{
		{"env first", explicit, pathDir + ":" + nodeDir, explicit, "$IMGPIPE_AZURITE"},
		{"PATH", "", pathDir + ":" + nodeDir, onPath, "PATH"},
		{"node_modules above", "", nodeDir, inModules, "node_modules"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(EnvVar, tc.env)
			t.Setenv("PATH", tc.path)
			c, err := Find()
			if err != nil || c.Path != tc.want || c.Source != tc.source {
				t.Fatalf("Find() = %+v, %v; want %s from %s", c, err, tc.want, tc.source)
			}
		})
	}
	t.Chdir(empty)
	t.Setenv(EnvVar, "")
	t.Setenv("PATH", nodeDir+":"+npmDir)
	c, err := Find()
	if err != nil || c.Path != npm || c.Source != "npm exec" || !strings.Contains(c.String(), "--package=azurite@"+PinnedVersion) {
		t.Fatalf("without an install: %+v, %v", c, err)
	}
	if _, err := FindLocal(); err == nil || !strings.Contains(err.Error(), "npm install -g azurite@"+PinnedVersion) {
		t.Fatalf("FindLocal without an install: %v", err)
	}
	t.Setenv("PATH", nodeDir)
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), "npm install -g azurite@"+PinnedVersion) {
		t.Fatalf("without npm: %v", err)
	}
	t.Setenv(EnvVar, filepath.Join(tmp, "missing"))
	t.Setenv("PATH", nodeDir+":"+npmDir)
	if _, err := Find(); err == nil || !strings.Contains(err.Error(), EnvVar) {
		t.Fatalf("a wrong %s falls through: %v", EnvVar, err)
	}
}
