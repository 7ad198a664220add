package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// diskFixture writes a small sparse raw disk with an MBR boot signature and
// some data.
func diskFixture(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(5<<20 + 512); err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	copy(mbr, []byte{0xEB, 0x63, 0x90})
	mbr[510], mbr[511] = 0x55, 0xAA
	if _, err := f.WriteAt(mbr, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(bytes.Repeat([]byte("imgpipe"), 5000), 3<<20); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDiskCLI(t *testing.T) {
	raw := diskFixture(t)
	dir := filepath.Dir(raw)
	vhd := filepath.Join(dir, "disk.vhd")

	out, err := runCLI(t, "disk", "inspect", "--output", "json", raw)
	if err != nil {
		t.Fatal(err)
	}
	var insp struct {
		Format         string `json:"format"`
		VirtualSize    int64  `json:"virtual_size"`
		AllocatedBytes int64  `json:"allocated_bytes"`
		Generation     string `json:"generation"`
		Azure          struct {
			Ready bool `json:"ready"`
		} `json:"azure"`
	}
	if err := json.Unmarshal([]byte(out), &insp); err != nil {
		t.Fatalf("inspect json: %v\n%s", err, out)
	}
	if insp.Format != "raw" || insp.VirtualSize != 5<<20+512 || insp.Generation != "V1" || insp.Azure.Ready || insp.AllocatedBytes == 0 || insp.AllocatedBytes > 1<<20 {
		t.Fatalf("inspect: %+v", insp)
	}

	// check --azure on a raw file: not ready, exit code 2, findings with fixes
	out, err = runCLI(t, "disk", "check", "--azure", raw)
	if exitStatus(err) != exitNegative || !strings.Contains(out, "fix:") {
		t.Fatalf("check on raw: err %v, output:\n%s", err, out)
	}

	if out, err = runCLI(t, "disk", "convert", raw, vhd, "--to", "vhd-fixed"); err != nil {
		t.Fatalf("convert: %v\n%s", err, out)
	}
	if out, err = runCLI(t, "disk", "check", "--azure", vhd); err != nil || !strings.Contains(out, "ready for Azure") {
		t.Fatalf("check on converted: %v\n%s", err, out)
	}
	st, err := os.Stat(vhd)
	if err != nil || st.Size() != 6<<20+512 {
		t.Fatalf("converted size: %v %v", st, err)
	}

	// refuses to overwrite without --force, and the file is untouched
	before, _ := os.ReadFile(vhd)
	if _, err = runCLI(t, "disk", "convert", raw, vhd, "--to", "vhd-fixed"); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrite without --force: %v", err)
	}
	if after, _ := os.ReadFile(vhd); !bytes.Equal(before, after) {
		t.Fatal("refused conversion changed the output")
	}
	if _, err = runCLI(t, "disk", "convert", raw, vhd, "--to", "vhdx", "--force"); err != nil {
		t.Fatalf("convert --force: %v", err)
	}
	if out, err = runCLI(t, "disk", "inspect", vhd); err != nil || !strings.Contains(out, "vhdx") || !strings.Contains(out, "generation    V1") {
		t.Fatalf("inspect vhdx: %v\n%s", err, out)
	}
	if _, err = runCLI(t, "disk", "convert", raw, vhd+"2", "--to", "qcow2"); err == nil || !strings.Contains(err.Error(), "vhd-fixed, vhdx or raw") {
		t.Fatalf("unknown --to: %v", err)
	}
	if _, err = runCLI(t, "disk", "check", raw); err == nil || !strings.Contains(err.Error(), "--azure") {
		t.Fatalf("check without --azure: %v", err)
	}
	if _, err = runCLI(t, "disk", "inspect", filepath.Join(dir, "missing.vhdx")); err == nil {
		t.Fatal("inspect of a missing file succeeded")
	}
}
