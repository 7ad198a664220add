package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/onprem"
)

// runOnpremCLI runs imgpipe in-process with args and returns what it printed.
func runOnpremCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	old := stdout
	stdout = &buf
	defer func() { stdout = old }()
	root := newRootCmd()
	root.SetArgs(args)
	err := root.Execute()
	return buf.String(), err
}

// bootableRaw writes a raw disk whose MBR has boot code and a signature
// (Hyper-V Generation 1) and some data at 1 MiB.
func bootableRaw(t *testing.T, path string, size int64, payload string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.WriteAt([]byte{0xeb, 0x63, 0x90}, 0)
	f.WriteAt([]byte{0x55, 0xaa}, 510)
	f.WriteAt([]byte(payload), 1<<20)
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
}

func TestOnpremCLI(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	raw := filepath.Join(dir, "web.raw")
	bootableRaw(t, raw, 8<<20, "web 1.0")

	out, err := runOnpremCLI(t, "onprem", "add", "--library", lib, "--image", "web", "--version", "1.0", "--channel", "test", raw, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var added onprem.AddResult
	if err := json.Unmarshal([]byte(out), &added); err != nil {
		t.Fatalf("add --output json: %v\n%s", err, out)
	}
	md := added.Metadata
	if md.Format != "vhdx" || md.Generation != "V1" || md.VirtualSize != 8<<20 || md.OS != "linux" || md.InputSHA256 == "" {
		t.Errorf("added %+v", md)
	}
	// The same input again is a no-op; the channel is added.
	if out, err := runOnpremCLI(t, "onprem", "add", "--library", lib, "--image", "web", "--version", "1.0", "--channel", "prod", raw); err != nil || !strings.Contains(out, "already present") {
		t.Errorf("re-add: %v\n%s", err, out)
	}
	// --format keep stores the raw input; deploy-script refuses it.
	if _, err := runOnpremCLI(t, "onprem", "add", "--library", lib, "--image", "web", "--version", "1.1-raw", "--format", "keep", "--keep-latest", raw); err != nil {
		t.Fatal(err)
	}

	out, err = runOnpremCLI(t, "onprem", "list", "--library", lib, "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var infos []onprem.ImageInfo
	if err := json.Unmarshal([]byte(out), &infos); err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || len(infos[0].Versions) != 2 || infos[0].Latest != "1.0" || infos[0].Channels["prod"] != "1.0" || infos[0].Channels["test"] != "1.0" {
		t.Errorf("list = %+v", infos)
	}

	script, err := runOnpremCLI(t, "onprem", "deploy-script", "--library", lib, "--host-path", `\\fs01\images`, "web", "prod", "--vm-name", "web-07", "--memory", "4GB", "--cpus", "4")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-Generation 1 ", `$ParentPath = '\\fs01\images\web\1.0\web-1.0.vhdx'`, "-MemoryStartupBytes 4294967296", "Set-VMProcessor -VMName $VMName -Count 4", strings.ToUpper(md.SHA256)} {
		if !strings.Contains(script, want) {
			t.Errorf("deploy script lacks %q:\n%s", want, script)
		}
	}
	if _, err := runOnpremCLI(t, "onprem", "deploy-script", "--library", lib, "web", "1.1-raw"); err == nil || !strings.Contains(err.Error(), "VHDX or VHD parent") {
		t.Errorf("deploy-script of a raw version = %v", err)
	}

	if out, err := runOnpremCLI(t, "onprem", "verify", "--library", lib); err != nil || strings.Count(out, "ok ") != 2 {
		t.Errorf("verify: %v\n%s", err, out)
	}
	// Corrupt one byte of the stored VHDX: verify answers "mismatch", exit status 2.
	p := filepath.Join(lib, "web", "1.0", "web-1.0.vhdx")
	b, _ := os.ReadFile(p)
	b[len(b)/2] ^= 1
	os.WriteFile(p, b, 0o644)
	out, err = runOnpremCLI(t, "onprem", "verify", "--library", lib, "web")
	if exitStatus(err) != exitNegative || !strings.Contains(out, "FAILED   web 1.0") {
		t.Errorf("verify after corruption: %v\n%s", err, out)
	}

	if _, err := runOnpremCLI(t, "onprem", "revoke", "--library", lib, "web", "1.0", "--reason", "bad bits"); err != nil {
		t.Fatal(err)
	}
	if _, err := runOnpremCLI(t, "onprem", "deploy-script", "--library", lib, "web", "1.0"); err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Errorf("deploy-script of a revoked version = %v", err)
	}
	if _, err := runOnpremCLI(t, "onprem", "promote", "--library", lib, "web", "1.0", "--channel", "prod"); err == nil {
		t.Error("promoting a revoked version succeeded")
	}
}

// TestOnpremAddGenerationFlag: --generation reaches the add (the
// generation rules are tested in internal/onprem, TestAddDiskNeedsGeneration).
func TestOnpremAddGenerationFlag(t *testing.T) {
	dir := t.TempDir()
	blank := filepath.Join(dir, "blank.raw")
	os.WriteFile(blank, make([]byte, 1<<20), 0o644)
	lib := filepath.Join(dir, "lib")
	if _, err := runOnpremCLI(t, "onprem", "add", "--library", lib, "--image", "x", "--version", "1", blank); err == nil || !strings.Contains(err.Error(), "--generation") {
		t.Errorf("add of a disk without a partition table = %v, want a request for --generation", err)
	}
	if out, err := runOnpremCLI(t, "onprem", "add", "--library", lib, "--image", "x", "--version", "1", "--generation", "V2", blank); err != nil || !strings.Contains(out, "Generation 2") {
		t.Errorf("with --generation: %v\n%s", err, out)
	}
}

// TestOnpremAddRecordsInCatalog: with a catalog, onprem add records the
// version, its artifact and the library copy, so promote --to test accepts
// the version; a second add records nothing twice.
func TestOnpremAddRecordsInCatalog(t *testing.T) {
	dir := t.TempDir()
	lib := filepath.Join(dir, "lib")
	cat := filepath.Join(dir, "catalog.db")
	raw := filepath.Join(dir, "web.raw")
	bootableRaw(t, raw, 8<<20, "web 2.0.0")
	for i := 0; i < 2; i++ {
		out, err := runOnpremCLI(t, "onprem", "add", "--library", lib, "--image", "web", "--version", "2.0.0", "--catalog", cat, raw)
		if err != nil || !strings.Contains(out, "recorded in catalog "+cat) {
			t.Fatalf("add %d: %v\n%s", i+1, err, out)
		}
	}
	if out, err := runOnpremCLI(t, "promote", "web", "2.0.0", "--to", "test", "--catalog", cat); err != nil {
		t.Fatalf("promote --to test: %v\n%s", err, out)
	}
	c, err := catalog.Open(context.Background(), cat)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cps, err := c.Copies(context.Background(), catalog.Ref{Image: "web", Version: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[catalog.CopyKind]int{}
	for _, cp := range cps {
		kinds[cp.Kind]++
	}
	if len(cps) != 2 || kinds[catalog.KindArtifact] != 1 || kinds[catalog.KindOnprem] != 1 {
		t.Fatalf("copies: %+v", cps)
	}
	v, err := c.Version(context.Background(), catalog.Ref{Image: "web", Version: "2.0.0"})
	if err != nil || v.HyperVGeneration != "V1" || v.ArtifactSHA256 == "" {
		t.Fatalf("version %+v: %v", v, err)
	}
}
