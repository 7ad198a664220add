package disk

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// The image fuzzers start from valid images the test makes itself and apply
// a fuzzed patch (offset + bytes), a fuzzed truncation and, optionally, a
// recomputation of the checksums, so that mutations get past the CRC and
// checksum gates and reach the structures behind them. Whatever the input,
// Open and every method of the result must return errors, not panic, and
// allocate only in proportion to the file.

var (
	fuzzBaseOnce sync.Once
	fuzzBases    [][]byte // 0: clean VHDX, 1: VHDX with a log to replay, 2: dynamic VHD, 3: fixed VHD
)

func fuzzSeeds(t testing.TB) [][]byte {
	fuzzBaseOnce.Do(func() {
		dir, err := os.MkdirTemp("", "imgpipe-fuzz-seed")
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(dir)
		raw := filepath.Join(dir, "src.raw")
		size := int64(2<<20 + 512*3)
		writeRaw(t, raw, size, scatteredPatterns(size, 11))
		vhdx := filepath.Join(dir, "a.vhdx")
		if _, err := ConvertFile(context.Background(), raw, vhdx, ConvertOptions{To: FormatVHDX, BlockSize: 1 << 20}); err != nil {
			t.Fatal(err)
		}
		clean, _ := os.ReadFile(vhdx)
		var lg guid
		copy(lg[:], "fuzz-fuzz-fuzz-!")
		dirtyVHDX(t, vhdx, lg,
			craftLogEntry(5, 0, lg, 4<<20, 6<<20, []logWrite{{fileOff: 4 << 20, data: randomSector(3)}, {fileOff: 4<<20 + 8192, zeroLen: 8192}}),
			craftLogEntry(6, 0, lg, 4<<20, 6<<20, []logWrite{{fileOff: 5<<20 + 4096, data: randomSector(4)}}))
		dirty, _ := os.ReadFile(vhdx)
		blk := randomSector(5)
		dyn := buildDynamicVHD(64<<10+512, 16<<10, map[int][]byte{0: blk, 4: blk[:512]}, map[int][]byte{0: {0xA5, 0x5A}})
		fixed := append(expected(64<<10, scatteredPatterns(64<<10, 12)), NewFixedFooter(64<<10, [16]byte{9}, time.Unix(vhdEpochUnix+5, 0)).Marshal()...)
		fuzzBases = [][]byte{clean, dirty, dyn, fixed}
	})
	return fuzzBases
}

// patched is an in-memory backing: a base image seen through byte
// patches and a truncation, so that fuzzing never copies or writes the
// multi-MiB base.
type patched struct {
	base    []byte
	size    int64
	patches []patch
}

type patch struct {
	off int64
	b   []byte
}

func (m *patched) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off >= m.size {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), m.size-off))
	copy(p[:n], m.base[off:])
	for _, pt := range m.patches {
		s, e := max(pt.off, off), min(pt.off+int64(len(pt.b)), off+int64(n))
		if e > s {
			copy(p[s-off:e-off], pt.b[s-pt.off:e-pt.off])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (m *patched) Close() error { return nil }
func (m *patched) dataRanges(off, length int64) ([]Extent, error) {
	return []Extent{{off, length}}, nil
}
func (m *patched) modTime() time.Time { return time.Time{} }
func (m *patched) name() string       { return "fuzz input" }

func (m *patched) read(off, n int64) []byte {
	b := make([]byte, n)
	if off+n > m.size {
		return nil
	}
	_, _ = m.ReadAt(b, off)
	return b
}

// fixChecksums recomputes every checksum imgpipe verifies, where the
// signature is in place, as extra patches.
func (m *patched) fixChecksums() {
	put32 := func(off int64, v uint32, be bool) {
		b := make([]byte, 4)
		if be {
			binary.BigEndian.PutUint32(b, v)
		} else {
			binary.LittleEndian.PutUint32(b, v)
		}
		m.patches = append(m.patches, patch{off, b})
	}
	if sig := m.read(0, 8); sig != nil && string(sig) == vhdxSignature {
		for _, off := range []int64{64 << 10, 128 << 10} {
			if b := m.read(off, 4096); b != nil && string(b[:4]) == "head" {
				put32(off+4, crc32cZeroed(b, 4), false)
			}
		}
		for _, off := range []int64{192 << 10, 256 << 10} {
			if b := m.read(off, 64<<10); b != nil && string(b[:4]) == "regi" {
				put32(off+4, crc32cZeroed(b, 4), false)
			}
		}
		// log entries from the start of the log (1 MiB in imgpipe's layout)
		for pos := int64(1 << 20); pos < 2<<20; {
			h := m.read(pos, 4096)
			if h == nil || string(h[:4]) != "loge" {
				break
			}
			n := int64(binary.LittleEndian.Uint32(h[8:]))
			if n < 4096 || n > 1<<20 {
				break
			}
			e := m.read(pos, n)
			if e == nil {
				break
			}
			put32(pos+4, crc32cZeroed(e, 4), false)
			pos += n
		}
		return
	}
	for _, off := range []int64{0, m.size - 512} {
		if b := m.read(off, 512); off >= 0 && b != nil && string(b[:8]) == vhdCookie {
			put32(off+64, vhdChecksum(b, 64), true)
		}
	}
	if b := m.read(512, 1024); b != nil && string(b[:8]) == vhdDynCookie {
		put32(512+36, vhdChecksum(b, 36), true)
	}
}

func fuzzImage(t *testing.T, base uint8, off uint32, data []byte, trunc uint32, fix bool, kinds []int) {
	bases := fuzzSeeds(t)
	b := bases[kinds[int(base)%len(kinds)]]
	if len(data) > 4096 {
		data = data[:4096]
	}
	m := &patched{base: b, size: int64(len(b))}
	if len(b) > 0 {
		m.patches = append(m.patches, patch{int64(int(off) % len(b)), data})
	}
	if trunc != 0 && int(trunc) < len(b) {
		m.size = int64(trunc)
	}
	if fix {
		m.fixChecksums()
	}
	img, err := openBacking(m, m.size)
	if err != nil {
		return
	}
	defer img.Close()
	exerciseImage(t, img)
}

// exerciseImage calls every method of an image opened from fuzzed bytes.
func exerciseImage(t *testing.T, img Image) {
	if img.Size() < 0 || img.Size() > maxVirtualSize {
		t.Fatalf("absurd size %d accepted", img.Size())
	}
	ext, err := img.Extents()
	if err == nil {
		var prev int64
		for _, e := range ext {
			if e.Length <= 0 || e.Offset < prev || e.End() > img.Size() {
				t.Fatalf("bad extent %+v (size %d)", e, img.Size())
			}
			prev = e.End()
		}
	}
	buf := make([]byte, 256<<10)
	for _, off := range []int64{0, img.Size() / 2, img.Size() - 1000, img.Size()} {
		_, _ = img.ReadAt(buf, max(0, off))
	}
	for i, e := range ext {
		if i == 8 {
			break
		}
		_, _ = img.ReadAt(buf[:min(int64(len(buf)), e.Length)], e.Offset)
	}
	_, _ = DetectGeneration(img)
	if d, ok := img.(Describer); ok {
		_ = d.Info()
	}
	v := AzureVHD(nopClose{img})
	_, _ = v.ReadAt(buf[:1024], v.Size()-1024)
}

func FuzzVHDX(f *testing.F) {
	fuzzSeeds(f)
	f.Add(uint8(0), uint32(0), []byte{}, uint32(0), false)
	f.Add(uint8(1), uint32(0), []byte{}, uint32(0), false)
	f.Add(uint8(0), uint32(64<<10+8), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, uint32(0), true) // header sequence
	f.Add(uint8(0), uint32(2<<20+64<<10+8), []byte{0, 0, 0, 0, 0, 0, 0, 0x40}, uint32(0), false)               // virtual size 2^62
	f.Add(uint8(0), uint32(192<<10+16+24), []byte{0xff, 0xff, 0xff, 0x7f}, uint32(0), true)                    // huge BAT region
	f.Add(uint8(1), uint32(1<<20+12), []byte{0, 0, 0, 0}, uint32(0), true)                                     // log tail loop
	f.Add(uint8(1), uint32(1<<20+100), []byte{1}, uint32(0), false)                                            // corrupt log entry
	f.Add(uint8(0), uint32(0), []byte{}, uint32(300<<10), false)                                               // truncated
	f.Add(uint8(0), uint32(3<<20), []byte{0x06, 0, 0, 0, 0, 0, 0, 0x10}, uint32(0), false)                     // BAT entry far away
	f.Fuzz(func(t *testing.T, base uint8, off uint32, patch []byte, trunc uint32, fix bool) {
		fuzzImage(t, base, off, patch, trunc, fix, []int{0, 1})
	})
}

func FuzzVHD(f *testing.F) {
	fuzzSeeds(f)
	f.Add(uint8(0), uint32(0), []byte{}, uint32(0), false)
	f.Add(uint8(1), uint32(0), []byte{}, uint32(0), false)
	f.Add(uint8(0), uint32(48), []byte{0x40, 0, 0, 0, 0, 0, 0, 0}, uint32(0), true)  // 2^62 virtual size
	f.Add(uint8(0), uint32(512+28), []byte{0x7f, 0xff, 0xff, 0xff}, uint32(0), true) // huge BAT
	f.Add(uint8(0), uint32(512+16), []byte{0, 0, 0, 0, 0, 0, 0, 0}, uint32(0), true) // BAT on the footer copy
	f.Add(uint8(0), uint32(1536), []byte{0, 0, 0, 3, 0, 0, 0, 3}, uint32(0), false)  // two blocks sharing space
	f.Add(uint8(0), uint32(512+16), []byte{0, 0, 0, 0, 0, 0, 2, 0}, uint32(0), true) // BAT pointing at header
	f.Add(uint8(1), uint32(0), []byte{}, uint32(1000), false)                        // truncated fixed
	f.Add(uint8(0), uint32(60), []byte{0, 0, 0, 4}, uint32(0), true)                 // differencing
	f.Fuzz(func(t *testing.T, base uint8, off uint32, patch []byte, trunc uint32, fix bool) {
		fuzzImage(t, base, off, patch, trunc, fix, []int{2, 3})
	})
}

// FuzzParsers feeds raw bytes to the fixed-size structure parsers.
func FuzzParsers(f *testing.F) {
	ft := NewFixedFooter(10<<30, [16]byte{1}, time.Now()).Marshal()
	f.Add(ft)
	dyn := buildDynamicVHD(1<<20, 1<<16, nil, nil)
	f.Add(dyn[512:1536])
	h := (&vhdxHeader{Sequence: 3, Version: 1, LogLength: 1 << 20, LogOffset: 1 << 20}).marshal()
	f.Add(h)
	f.Add([]byte("regi"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if footer, err := ParseFooter(b); err == nil && footer.ChecksumOK() {
			again, err := ParseFooter(footer.Marshal())
			if err != nil || again.CurrentSize != footer.CurrentSize || again.UniqueID != footer.UniqueID || again.DiskType != footer.DiskType || !again.ChecksumOK() {
				t.Fatalf("footer does not survive Marshal: %+v vs %+v", again, footer)
			}
		}
		_, _ = ParseDynamicHeader(b)
		if hd, err := parseVHDXHeader(b); err == nil {
			if again, err := parseVHDXHeader(hd.marshal()); err != nil || *again != *hd {
				t.Fatalf("VHDX header does not survive marshal: %v", err)
			}
		}
		if len(b) >= 4 {
			rt := make([]byte, vhdxRegionSize)
			copy(rt, b)
			binary.LittleEndian.PutUint32(rt[4:], crc32cZeroed(rt, 4))
			_, _ = parseRegionTable(rt)
		}
		if len(b) >= 8 {
			size := int64(binary.LittleEndian.Uint64(b) >> 1)
			c, hh, s := Geometry(size)
			if int64(c)*int64(hh)*int64(s)*512 > size {
				t.Fatalf("geometry %d/%d/%d exceeds size %d", c, hh, s, size)
			}
		}
	})
}

// writeSparse writes b to path, leaving all-zero 64 KiB pieces as holes.
func writeSparse(t testing.TB, path string, b []byte) {
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for off := 0; off < len(b); off += 64 << 10 {
		p := b[off:min(len(b), off+64<<10)]
		if !isZero(p) {
			if _, err := f.WriteAt(p, int64(off)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.Truncate(int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// TestFuzzSeedsAreValid keeps the fuzz bases honest: each opens, and the
// dirty VHDX really goes through log replay.
func TestFuzzSeedsAreValid(t *testing.T) {
	for i, b := range fuzzSeeds(t) {
		path := filepath.Join(t.TempDir(), "seed")
		writeSparse(t, path, b)
		img, err := Open(path)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if i == 1 && !img.(Describer).Info().LogReplayed {
			t.Fatal("seed 1 was not replayed")
		}
		exerciseImage(t, img)
		img.Close()
	}
}
