package build

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"imgpipe/internal/disk"
	"imgpipe/internal/disk/disktest"
)

func TestInspectDisk(t *testing.T) {
	dir := t.TempDir()
	mbr := make([]byte, 1<<20)
	copy(mbr, disktest.BootSector())
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	bootRaw := write("boot.raw", mbr)
	vhd := filepath.Join(dir, "boot.vhd")
	if _, err := disk.ConvertFile(context.Background(), bootRaw, vhd, disk.ConvertOptions{To: disk.FormatVHDFixed}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		ok   bool
		want DiskInfo
	}{
		{bootRaw, true, DiskInfo{Format: "raw", VirtualSize: 1 << 20, Generation: "V1"}},
		{vhd, true, DiskInfo{Format: "vhd-fixed", VirtualSize: 1 << 20, Generation: "V1"}},
		{write("blank.img", make([]byte, 4096)), true, DiskInfo{Format: "raw", VirtualSize: 4096}},
		{write("output-disk", append([]byte("QFI\xfb"), make([]byte, 508)...)), true, DiskInfo{Format: "qcow2"}},
		{write("vm.vmcx", []byte("not a disk")), false, DiskInfo{}},
		{filepath.Join(dir, "missing.raw"), false, DiskInfo{}},
	} {
		got, ok := InspectDisk(tc.path)
		if ok != tc.ok || got != tc.want {
			t.Errorf("InspectDisk(%s) = %+v %v, want %+v %v", filepath.Base(tc.path), got, ok, tc.want, tc.ok)
		}
	}
}
