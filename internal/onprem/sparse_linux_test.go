package onprem

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestAddKeepsHoles checks that zero ranges are not written: the library copy
// of a mostly-empty sparse disk allocates only about its data.
func TestAddKeepsHoles(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "disk.raw")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	const size = 64 << 20
	for _, off := range []int64{0, 10 << 20, size - 4096} {
		f.WriteAt([]byte("data block"), off)
	}
	f.Truncate(size)
	f.Close()
	l, err := Open(filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.AddFile(context.Background(), src, AddOptions{Image: "web", Version: "1", Format: "raw", VirtualSize: size, Generation: "V1", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(res.Path, &st); err != nil {
		t.Fatal(err)
	}
	if st.Size != size {
		t.Fatalf("size %d, want %d", st.Size, size)
	}
	if alloc := st.Blocks * 512; alloc > 1<<20 {
		t.Errorf("library copy allocates %d bytes for 3 small blocks: holes were written", alloc)
	}
	if err := l.Verify(context.Background(), "web", "1", nil); err != nil {
		t.Error(err)
	}
}
