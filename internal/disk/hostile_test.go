package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/testenv"
)

// Hostile images (issue #20): small files whose tables claim huge disks,
// tables that point into themselves or at each other, and block sizes that
// break the arithmetic. Each must be refused (or read correctly) at once:
// the work of opening and reading an image is bounded by the file's real
// size plus the data it describes.

// openBound is how long refusing a hostile image may take on a loaded
// 2-core machine. On main before the fix these took 4 to 11 minutes.
const openBound = 5 * time.Second

func putDynHeader(b []byte, off int, f func(h []byte)) {
	h := b[off : off+1024]
	f(h)
	binary.BigEndian.PutUint32(h[36:], vhdChecksum(h, 36))
}

func putFooter(b []byte, off int, f func(ft []byte)) {
	ft := b[off : off+512]
	f(ft)
	binary.BigEndian.PutUint32(ft[64:], vhdChecksum(ft, 64))
}

// TestVHDTinyBlockSizes: a dynamic VHD whose block size is 512-2048 bytes
// panicked inspect, convert and upload (the sector bitmap size rounded to
// 0). It is refused; 4 KiB blocks (the smallest whose bitmap qemu computes
// as the specification does) are read, and agree with qemu-img.
func TestVHDTinyBlockSizes(t *testing.T) {
	dir := t.TempDir()
	for _, bs := range []uint32{512, 1024, 2048} {
		b := buildDynamicVHD(64<<10, 4096, map[int][]byte{0: randomSector(1), 3: randomSector(2)}, nil)
		putDynHeader(b, 512, func(h []byte) {
			binary.BigEndian.PutUint32(h[28:], uint32(64<<10)/bs)
			binary.BigEndian.PutUint32(h[32:], bs)
		})
		p := writeFile(t, dir, "tiny.vhd", b)
		img, err := Open(p)
		if err == nil {
			// Before the fix Open succeeded and these panicked.
			_, _ = img.Extents()
			_, _ = img.ReadAt(make([]byte, 8192), 0)
			img.Close()
			t.Fatalf("block size %d: opened", bs)
		}
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "block size") {
			t.Fatalf("block size %d: error %v, want a corrupt block size", bs, err)
		}
	}

	// 4 KiB blocks: 8 sectors, a 1-byte bitmap padded to a sector.
	size := int64(64 << 10)
	blk := randomSector(3)[:4096]
	p := writeFile(t, dir, "4k.vhd", buildDynamicVHD(size, 4096, map[int][]byte{0: blk, 2: blk, 15: blk}, map[int][]byte{2: {0xA5}}))
	img := mustOpen(t, p)
	want := make([]byte, size)
	copy(want, blk)
	copy(want[15*4096:], blk)
	for s := 0; s < 8; s++ {
		if 0xA5&(0x80>>s) != 0 {
			copy(want[2*4096+s*512:2*4096+(s+1)*512], blk[s*512:])
		}
	}
	equalBytes(t, "4 KiB-block VHD", readAll(t, img), want)
	checkExtents(t, img, want)
	// qemu-img reads allocated blocks whole (it ignores the sector bitmap
	// on reads), so compare with it on an image whose bitmaps are full.
	testenv.RequireTool(t, "qemu-img")
	p = writeFile(t, dir, "4k-full.vhd", buildDynamicVHD(size, 4096, map[int][]byte{0: blk, 2: blk, 15: blk}, nil))
	copy(want[2*4096:], blk)
	equalBytes(t, "4 KiB-block VHD, full bitmaps", readAll(t, mustOpen(t, p)), want)
	out := filepath.Join(dir, "4k.raw")
	run(t, "qemu-img", "convert", "-f", "vpc", "-O", "raw", p, out)
	q, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "qemu-img's reading", q[:size], want)
}

// hugeVHD lays out a dynamic VHD of virtual size 64 TiB with 256 MiB
// blocks (a 1 MiB BAT), and lets point fill the BAT.
func hugeVHD(extra int, point func(bat []byte)) []byte {
	const size = 64 << 40
	const bs = 256 << 20
	blocks := size / bs
	ft := NewFixedFooter(size, [16]byte{7}, time.Unix(vhdEpochUnix, 0))
	ft.DiskType = vhdTypeDynamic
	ft.DataOffset = 512
	fb := ft.Marshal()
	batOff := 1536
	b := make([]byte, batOff+blocks*4+extra+512)
	copy(b, fb)
	copy(b[len(b)-512:], fb)
	putDynHeader(b, 512, func(h []byte) {
		copy(h, vhdDynCookie)
		binary.BigEndian.PutUint64(h[8:], 0xFFFFFFFFFFFFFFFF)
		binary.BigEndian.PutUint64(h[16:], uint64(batOff))
		binary.BigEndian.PutUint32(h[24:], 0x00010000)
		binary.BigEndian.PutUint32(h[28:], uint32(blocks))
		binary.BigEndian.PutUint32(h[32:], bs)
	})
	point(b[batOff : batOff+blocks*4])
	return b
}

// TestVHDOverlappingBlocksRefused: tiny files claiming 64 TiB whose blocks
// share one all-ones bitmap (inspect took 242 s), whose BAT points into
// itself (~11 minutes), or whose blocks lie on the header, are refused
// quickly, and a cancelled context is honoured.
func TestVHDOverlappingBlocksRefused(t *testing.T) {
	dir := t.TempDir()
	const bmSize = 64 << 10 // bitmap of a 256 MiB block
	shared := hugeVHD(bmSize+4096, func(bat []byte) {
		at := uint32((1536 + len(bat)) / 512)
		for i := 0; i < len(bat); i += 4 {
			binary.BigEndian.PutUint32(bat[i:], at)
		}
	})
	for i := 1536 + (64<<40)/(256<<20)*4; i < 1536+(64<<40)/(256<<20)*4+bmSize; i++ {
		shared[i] = 0xFF
	}
	self := hugeVHD(0, func(bat []byte) {
		for i := 0; i < len(bat); i += 4 {
			binary.BigEndian.PutUint32(bat[i:], uint32(3+i/4%2000)) // sectors inside the BAT
		}
	})
	onHeader := buildDynamicVHD(1<<20, 1<<16, map[int][]byte{0: []byte("x"), 1: []byte("y")}, nil)
	binary.BigEndian.PutUint32(onHeader[1536+4:], 1) // block 1 on the dynamic header
	twoOnOne := buildDynamicVHD(1<<20, 1<<16, map[int][]byte{0: []byte("x"), 1: []byte("y")}, nil)
	copy(twoOnOne[1536+4:1536+8], twoOnOne[1536:1540]) // block 1 = block 0
	// A block overlapping the next one by a sector.
	halfway := buildDynamicVHD(1<<20, 1<<16, map[int][]byte{0: []byte("x"), 1: []byte("y")}, nil)
	binary.BigEndian.PutUint32(halfway[1536+4:], binary.BigEndian.Uint32(halfway[1536:])+1)
	for _, c := range []struct {
		name string
		b    []byte
	}{
		{"shared all-ones bitmap, 64 TiB", shared},
		{"BAT points into itself, 64 TiB", self},
		{"block on the dynamic header", onHeader},
		{"two blocks at one offset", twoOnOne},
		{"block overlaps the next", halfway},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, "h.vhd", c.b)
			start := time.Now()
			img, err := Open(p)
			if err == nil {
				img.Close()
				t.Fatal("opened")
			}
			if d := time.Since(start); d > openBound {
				t.Fatalf("took %v to refuse", d)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "overlap") {
				t.Fatalf("error %v, want corrupt ... overlaps", err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			if _, err := OpenContext(ctx, p); !errors.Is(err, context.Canceled) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("cancelled open: %v", err)
			}
		})
	}
	// The shortest legal last block: its bitmap inside the file, the rest
	// reads as zeros, and the trailing footer is never read as data.
	short := buildDynamicVHD(1<<20, 1<<16, map[int][]byte{15: {1, 2, 3}}, nil)
	n := len(short)
	short = append(short[:n-512-(1<<16)+1024], short[n-512:]...) // keep 1 KiB of block 15's data
	p := writeFile(t, dir, "short.vhd", short)
	img := mustOpen(t, p)
	want := make([]byte, 1<<20)
	copy(want[15<<16:], []byte{1, 2, 3})
	equalBytes(t, "short last block", readAll(t, img), want)
	checkExtents(t, img, want)
}

// vhdxCase builds an imgpipe VHDX (1 MiB log at 1 MiB, metadata at 2 MiB,
// BAT at 3 MiB, blocks from 4 MiB on) of 8 MiB virtual with the given
// block size, holding data in every block.
func vhdxBase(t *testing.T, dir string, blockSize int64) []byte {
	t.Helper()
	size := int64(8 << 20)
	var pats []pattern
	for off := int64(0); off < size; off += blockSize {
		pats = append(pats, pattern{off + 4096, randomSector(uint64(off>>20) + 20)})
	}
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, size, pats)
	out := filepath.Join(dir, "base.vhdx")
	os.Remove(out)
	if _, err := ConvertFile(context.Background(), raw, out, ConvertOptions{To: FormatVHDX, BlockSize: blockSize}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func setBAT(b []byte, block int, fileMiB uint64) {
	binary.LittleEndian.PutUint64(b[vhdxBATOff+8*block:], fileMiB<<20|batFully)
}

func copyBAT(b []byte, dst, src int) {
	copy(b[vhdxBATOff+8*dst:vhdxBATOff+8*dst+8], b[vhdxBATOff+8*src:])
}

// setRegion rewrites the BAT (i=0) or metadata (i=1) region entry in both
// region tables, with valid checksums.
func setRegion(b []byte, i int, off uint64, length uint32) {
	for _, rt := range []int{192 << 10, 256 << 10} {
		e := b[rt+16+32*i:]
		binary.LittleEndian.PutUint64(e[16:], off)
		binary.LittleEndian.PutUint32(e[24:], length)
		binary.LittleEndian.PutUint32(b[rt+4:], crc32cZeroed(b[rt:rt+vhdxRegionSize], 4))
	}
}

func setLog(b []byte, off uint64) {
	for _, h := range []int{64 << 10, 128 << 10} {
		binary.LittleEndian.PutUint64(b[h+72:], off)
		binary.LittleEndian.PutUint32(b[h+4:], crc32cZeroed(b[h:h+vhdxHeaderSize], 4))
	}
}

// TestVHDXStructuralValidation: BAT entries pointing at the BAT, the log,
// the metadata region, the headers, each other or past the end of the
// file, and regions laid over each other, are refused. qemu-img is the
// oracle where it refuses them too.
func TestVHDXStructuralValidation(t *testing.T) {
	dir := t.TempDir()
	base1 := vhdxBase(t, dir, 1<<20)
	base2 := vhdxBase(t, dir, 2<<20)
	_, qemuErr := exec.LookPath("qemu-img")
	cases := []struct {
		name  string
		base  []byte
		edit  func(b []byte) []byte
		text  string
		qemu  bool // qemu-img refuses it too (qemu 7.2 accepts blocks that overlap each other)
		bsize int64
	}{
		{"block on the BAT", base1, func(b []byte) []byte { setBAT(b, 2, 3); return b }, "overlaps", true, 1 << 20},
		{"block on the log", base1, func(b []byte) []byte { setBAT(b, 2, 1); return b }, "overlaps", true, 1 << 20},
		{"block on the metadata", base1, func(b []byte) []byte { setBAT(b, 2, 2); return b }, "overlaps", true, 1 << 20},
		{"block on the headers", base1, func(b []byte) []byte { setBAT(b, 2, 0); return b }, "outside", false, 1 << 20},
		{"two blocks at one offset", base1, func(b []byte) []byte { copyBAT(b, 5, 0); return b }, "overlaps", false, 1 << 20},
		{"every block at one offset (amplification)", base1, func(b []byte) []byte {
			for i := 1; i < 8; i++ {
				copyBAT(b, i, 0)
			}
			return b
		}, "overlap", false, 1 << 20},
		{"2 MiB blocks a MiB apart", base2, func(b []byte) []byte { setBAT(b, 1, 5); return b }, "overlaps", false, 2 << 20},
		{"block past the end", base1, func(b []byte) []byte { setBAT(b, 2, uint64(len(b)>>20)+1); return b }, "outside", true, 1 << 20},
		{"block straddles the end", base2, func(b []byte) []byte { setBAT(b, 3, uint64(len(b)>>20)-1); return b }, "outside", true, 2 << 20},
		{"BAT region on the metadata region", base1, func(b []byte) []byte { setRegion(b, 0, 2<<20, 1<<20); return b }, "overlaps", true, 1 << 20},
		{"log on the BAT", base1, func(b []byte) []byte { setLog(b, 3<<20); return b }, "overlaps", true, 1 << 20},
		{"metadata region on the log", base1, func(b []byte) []byte { setRegion(b, 1, 1<<20, 1<<20); return b }, "overlaps", true, 1 << 20},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := c.edit(append([]byte(nil), c.base...))
			p := writeFile(t, dir, "bad.vhdx", b)
			start := time.Now()
			img, err := Open(p)
			if err == nil {
				img.Close()
				t.Fatal("opened a structurally invalid VHDX")
			}
			if d := time.Since(start); d > openBound {
				t.Fatalf("took %v to refuse", d)
			}
			if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %q: want corrupt, mentioning %q", err, c.text)
			}
			if !c.qemu {
				return
			}
			if qemuErr != nil {
				testenv.Missing(t, "qemu-img is not installed")
			}
			out, qerr := exec.Command("qemu-img", "convert", "-f", "vhdx", "-O", "raw", p, filepath.Join(dir, "q.raw")).CombinedOutput()
			if qerr == nil {
				t.Fatalf("the oracle disagrees: qemu-img converted it\n%s", out)
			}
		})
	}
	// The unedited bases open and read (the checks do not refuse good files).
	for _, b := range [][]byte{base1, base2} {
		p := writeFile(t, dir, "good.vhdx", b)
		img := mustOpen(t, p)
		if _, err := img.Extents(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenHonoursContext: the structural checks of a large sparse VHDX
// (64 TiB virtual, 2 million BAT entries) stop at a cancelled context.
func TestOpenHonoursContext(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	p := filepath.Join(dir, "big.vhdx")
	run(t, "qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=dynamic,block_size=32M", p, "64T")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start := time.Now()
	img, err := OpenContext(ctx, p)
	if err == nil {
		img.Close()
		t.Fatal("opened with a cancelled context")
	}
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("took %v to notice the cancelled context", d)
	}
	img = mustOpen(t, p) // and it is a good file
	if img.Size() != 64<<40 {
		t.Fatalf("size %d", img.Size())
	}
}
