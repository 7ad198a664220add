// Package disktest writes the small raw test disks that tests across
// imgpipe start from (a BIOS boot sector, some data, a sparse tail). Only
// tests import it; it imports nothing of imgpipe, so internal/disk's own
// tests can use it too.
package disktest

import (
	"encoding/binary"
	"os"
	"testing"
)

// BootSector returns a 512-byte MBR with BIOS boot code (EB 63 90) and the
// boot signature 55 AA and no partition entries: the detectors read it as
// Hyper-V Generation 1 (Azure V1).
func BootSector() []byte {
	b := make([]byte, 512)
	copy(b, []byte{0xEB, 0x63, 0x90})
	b[510], b[511] = 0x55, 0xAA
	return b
}

// ActiveLinuxSector returns a 512-byte MBR with 440 bytes of boot code
// (EB), one active Linux partition (type 83) from LBA 2048 of sectors
// sectors (0 leaves the length unset) and the boot signature: a BIOS
// (Generation 1, Azure V1) disk as an installer leaves it.
func ActiveLinuxSector(sectors uint32) []byte {
	b := make([]byte, 512)
	for i := 0; i < 440; i++ {
		b[i] = 0xEB
	}
	e := b[446:]
	e[0], e[4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(e[8:], 2048)
	binary.LittleEndian.PutUint32(e[12:], sectors)
	b[510], b[511] = 0x55, 0xAA
	return b
}

// WriteRaw writes a raw disk of size bytes at path: BootSector at offset 0,
// data (if any) at offset at, zeros (sparse) elsewhere.
func WriteRaw(t testing.TB, path string, size int64, data []byte, at int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(BootSector(), 0); err != nil {
		t.Fatal(err)
	}
	if len(data) > 0 {
		if _, err := f.WriteAt(data, at); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}
