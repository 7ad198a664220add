package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/pipeline"
)

// TestBuildRecordsProvenance records an earlier build from its manifest (no
// Packer run needed) and checks the catalog's view: provenance, artifact copy,
// idempotent re-run, and a refused different artifact for the same version.
func TestBuildRecordsProvenance(t *testing.T) {
	dir := t.TempDir()
	tmpl := filepath.Join(dir, "t.pkr.hcl")
	if err := os.WriteFile(tmpl, []byte("# template\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	disk := filepath.Join(dir, "disk.raw")
	if err := os.WriteFile(disk, make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	manifest := filepath.Join(dir, "packer-manifest.json")
	writeManifest := func() {
		m := `{"builds":[{"name":"disk","builder_type":"null","build_time":1700000000,
		  "files":[{"name":"disk.raw","size":1048576}],"packer_run_uuid":"run-1",
		  "custom_data":{"image":"web","version":"1.2.3","os":"linux","generation":"V1"}}],"last_run_uuid":"run-1"}`
		if err := os.WriteFile(manifest, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeManifest()
	cat := filepath.Join(dir, "catalog.db")
	args := []string{"build", tmpl, "--from-manifest", "--workdir", dir, "--manifest", manifest, "--catalog", cat, "-o", "json"}

	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("build --from-manifest: %v\n%s", err, out)
	}
	var res struct {
		Recorded []pipeline.BuildRecord `json:"recorded"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || len(res.Recorded) != 1 || res.Recorded[0].Version != "1.2.3" {
		t.Fatalf("recorded: %+v %v\n%s", res, err, out)
	}

	out, err = runCLI(t, "show", "web", "1.2.3", "--catalog", cat, "-o", "json")
	if err != nil {
		t.Fatalf("show: %v\n%s", err, out)
	}
	for _, want := range []string{`"template_hash"`, `"build_id": "run-1"`, `"hyperv_generation": "V1"`, `"os_type": "Linux"`, `"kind": "artifact"`, disk} {
		if !strings.Contains(out, want) {
			t.Errorf("show output lacks %s:\n%s", want, out)
		}
	}

	// Same artifact again: no-op.
	if out, err := runCLI(t, args...); err != nil {
		t.Fatalf("second record: %v\n%s", err, out)
	}
	// A different disk under the same version is refused: versions are immutable.
	if err := os.WriteFile(disk, []byte(strings.Repeat("x", 1<<20)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, args...)
	if err == nil || !strings.Contains(err.Error(), "immutable") {
		t.Fatalf("changed artifact for 1.2.3 was not refused: %v\n%s", err, out)
	}
}
