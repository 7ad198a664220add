package disk

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// pattern is data written at a virtual offset of a test disk.
type pattern struct {
	off  int64
	data []byte
}

// scatteredPatterns returns deterministic, non-zero patterns at offsets
// that hit block starts, block ends, straddle block boundaries, sit at
// sector (not 4 KiB) alignment and touch the last sector.
func scatteredPatterns(size int64, seed uint64) []pattern {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	fill := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(r.IntN(255) + 1)
		}
		// a run of zeros inside the data, which must survive conversion
		if n > 3*4096 {
			clear(b[4096 : 3*4096])
		}
		return b
	}
	offs := []struct{ off, n int64 }{
		{0, 512},
		{512 * 3, 4096},
		{1<<20 - 2048, 8192},          // across the first 1 MiB boundary
		{2<<20 + 512*7, 70000},        // unaligned inside
		{8<<20 - 4096, 16384},         // across an 8 MiB boundary
		{size/2 - 100*512, 300 * 512}, // the middle
		{size - 4096*2, 4096 * 2},     // the very end
	}
	var out []pattern
	for _, o := range offs {
		if o.off < 0 || o.off+o.n > size {
			continue
		}
		out = append(out, pattern{o.off, fill(int(o.n))})
	}
	return out
}

// writeRaw creates a sparse raw image of size bytes holding the patterns.
func writeRaw(t testing.TB, path string, size int64, pats []pattern) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	for _, p := range pats {
		if _, err := f.WriteAt(p.data, p.off); err != nil {
			t.Fatal(err)
		}
	}
}

// expected builds the full expected content (for small disks only).
func expected(size int64, pats []pattern) []byte {
	b := make([]byte, size)
	for _, p := range pats {
		copy(b[p.off:], p.data)
	}
	return b
}

// readAll reads an image through its ReaderAt in uneven pieces.
func readAll(t testing.TB, img Image) []byte {
	t.Helper()
	out := make([]byte, img.Size())
	piece := int64(1<<20 + 4096 + 512)
	for off := int64(0); off < img.Size(); off += piece {
		n := min(piece, img.Size()-off)
		m, err := img.ReadAt(out[off:off+n], off)
		if m != int(n) || (err != nil && err != io.EOF) {
			t.Fatalf("ReadAt(%d, %d) = %d, %v", off, n, m, err)
		}
	}
	return out
}

// checkExtents verifies that every non-zero byte lies inside an extent and
// that the extents are sorted, non-overlapping and inside the disk.
func checkExtents(t testing.TB, img Image, want []byte) {
	t.Helper()
	ext, err := img.Extents()
	if err != nil {
		t.Fatalf("Extents: %v", err)
	}
	var prev int64
	covered := make([]bool, len(want)/512+1)
	for i, e := range ext {
		if e.Length <= 0 || e.Offset < prev || e.End() > img.Size() {
			t.Fatalf("extent %d %+v is empty, unsorted, overlapping or past the size %d", i, e, img.Size())
		}
		if i > 0 && e.Offset == prev {
			t.Fatalf("extent %d %+v touches the previous one: not merged", i, e)
		}
		prev = e.End()
		for s := e.Offset / 512; s*512 < e.End() && int(s) < len(covered); s++ {
			covered[s] = true
		}
	}
	for s := range covered {
		lo, hi := int64(s)*512, min(int64(s+1)*512, int64(len(want)))
		if lo < hi && !covered[s] && !isZero(want[lo:hi]) {
			t.Fatalf("sector %d holds data but no extent covers it (extents %v)", s, ext)
		}
	}
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func fileHash(t testing.TB, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

func mustOpen(t testing.TB, path string) Image {
	t.Helper()
	img, err := Open(path)
	if err != nil {
		t.Fatalf("Open(%s): %v", filepath.Base(path), err)
	}
	t.Cleanup(func() { img.Close() })
	return img
}

func equalBytes(t testing.TB, what string, got, want []byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d bytes, want %d", what, len(got), len(want))
	}
	if !bytes.Equal(got, want) {
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: first difference at byte %d: %#x, want %#x", what, i, got[i], want[i])
			}
		}
	}
}
