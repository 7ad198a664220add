package disktest_test

import (
	"os"
	"path/filepath"
	"testing"

	"imgpipe/internal/disk"
	"imgpipe/internal/disk/disktest"
)

// TestWriteRaw: both boot sectors are read as a BIOS (Generation 1) raw
// disk of the size asked for, with the data where it was put.
func TestWriteRaw(t *testing.T) {
	dir := t.TempDir()
	boot := filepath.Join(dir, "boot.raw")
	disktest.WriteRaw(t, boot, 3<<20, []byte("data"), 1<<20)
	active := make([]byte, 3<<20) // as the callers of ActiveLinuxSector use it
	copy(active, disktest.ActiveLinuxSector(4096))
	copy(active[1<<20:], "data")
	if err := os.WriteFile(filepath.Join(dir, "active.raw"), active, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"boot", "active"} {
		p := filepath.Join(dir, name+".raw")
		r, err := disk.Inspect(t.Context(), p)
		if err != nil {
			t.Fatal(err)
		}
		if r.Format != disk.FormatRaw || r.VirtualSize != 3<<20 || r.Generation != "V1" {
			t.Fatalf("%s: inspect: %+v", name, r)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if string(b[1<<20:1<<20+4]) != "data" || b[510] != 0x55 || b[511] != 0xAA || len(b) != 3<<20 {
			t.Fatalf("%s: signature % x, data %q, size %d", name, b[510:512], b[1<<20:1<<20+4], len(b))
		}
	}
}
