package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// buildDynamicVHD lays out a dynamic VHD by the specification: footer copy,
// dynamic header, BAT, blocks (sector bitmap + data), footer. data maps a
// block index to its content; bitmap (optional) overrides a block's sector
// bitmap (default: all sectors present).
func buildDynamicVHD(size int64, blockSize uint32, data map[int][]byte, bitmap map[int][]byte) []byte {
	blocks := int((size + int64(blockSize) - 1) / int64(blockSize))
	bmSize := (int(blockSize)/512/8 + 511) &^ 511
	batLen := (blocks*4 + 511) &^ 511
	ft := NewFixedFooter(size, [16]byte{1, 2, 3}, time.Unix(vhdEpochUnix+1000, 0))
	ft.DiskType = vhdTypeDynamic
	ft.DataOffset = 512
	c, h, s := Geometry(size)
	ft.Cylinders, ft.Heads, ft.SectorsPerTrack = c, h, s
	fb := ft.Marshal()
	out := append([]byte(nil), fb...)
	hdr := make([]byte, 1024)
	copy(hdr, vhdDynCookie)
	binary.BigEndian.PutUint64(hdr[8:], 0xFFFFFFFFFFFFFFFF)
	binary.BigEndian.PutUint64(hdr[16:], 1536)
	binary.BigEndian.PutUint32(hdr[24:], 0x00010000)
	binary.BigEndian.PutUint32(hdr[28:], uint32(blocks))
	binary.BigEndian.PutUint32(hdr[32:], blockSize)
	binary.BigEndian.PutUint32(hdr[36:], vhdChecksum(hdr, 36))
	out = append(out, hdr...)
	bat := make([]byte, batLen)
	for i := range blocks {
		binary.BigEndian.PutUint32(bat[4*i:], vhdUnallocated)
	}
	next := 1536 + batLen
	var body []byte
	for i := range blocks {
		d, ok := data[i]
		if !ok {
			continue
		}
		binary.BigEndian.PutUint32(bat[4*i:], uint32(next/512))
		bm := make([]byte, bmSize)
		if b, ok := bitmap[i]; ok {
			copy(bm, b)
		} else {
			for j := range bm {
				bm[j] = 0xFF
			}
		}
		blk := make([]byte, blockSize)
		copy(blk, d)
		body = append(append(body, bm...), blk...)
		next += bmSize + int(blockSize)
	}
	out = append(out, bat...)
	out = append(out, body...)
	return append(out, fb...)
}

func writeFile(t testing.TB, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDynamicVHDSectorBitmap(t *testing.T) {
	dir := t.TempDir()
	const bs = 4096 * 4 // 32 sectors per block
	blk := randomSector(9)
	blk = append(blk, randomSector(10)...)
	bm := []byte{0xF0, 0x0F, 0, 0} // sectors 0-3 and 12-15 present
	size := int64(5*bs + 1024)
	p := writeFile(t, dir, "dyn.vhd", buildDynamicVHD(size, bs, map[int][]byte{1: blk, 5: blk[:1024]}, map[int][]byte{1: bm}))
	img := mustOpen(t, p)
	if img.Format() != FormatVHDDynamic || img.Size() != size {
		t.Fatalf("format %s size %d", img.Format(), img.Size())
	}
	want := make([]byte, size)
	copy(want[bs:bs+4*512], blk[:4*512])
	copy(want[bs+12*512:bs+16*512], blk[12*512:16*512])
	copy(want[5*bs:], blk[:1024])
	equalBytes(t, "dynamic VHD", readAll(t, img), want)
	ext, err := img.Extents()
	if err != nil {
		t.Fatal(err)
	}
	wantExt := []Extent{{bs, 4 * 512}, {bs + 12*512, 4 * 512}, {5 * bs, 1024}}
	if len(ext) != len(wantExt) {
		t.Fatalf("extents %v, want %v", ext, wantExt)
	}
	for i := range ext {
		if ext[i] != wantExt[i] {
			t.Fatalf("extents %v, want %v", ext, wantExt)
		}
	}
	// unaligned reads across bitmap runs
	got := make([]byte, 3000)
	if _, err := img.ReadAt(got, bs+3*512+100); err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "unaligned read", got, want[bs+3*512+100:bs+3*512+3100])
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	good := buildDynamicVHD(1<<20, 1<<16, map[int][]byte{0: []byte("x")}, nil)
	mut := func(f func(b []byte)) []byte { b := append([]byte(nil), good...); f(b); return b }
	diff := mut(func(b []byte) {
		n := len(b) - 512
		binary.BigEndian.PutUint32(b[n+60:], vhdTypeDiff)
		binary.BigEndian.PutUint32(b[n+64:], vhdChecksum(b[n:], 64))
	})
	cases := []struct {
		name string
		data []byte
		is   error
		text string
	}{
		{"bad footer checksum", mut(func(b []byte) { b[len(b)-512+50]++ }), ErrCorrupt, "checksum"},
		{"differencing", diff, ErrUnsupported, "parent"},
		{"bad dynamic header checksum", mut(func(b []byte) { b[512+30]++ }), ErrCorrupt, "checksum"},
		{"absurd size", mut(func(b []byte) {
			for _, n := range []int{0, len(b) - 512} {
				binary.BigEndian.PutUint64(b[n+48:], 1<<62)
				binary.BigEndian.PutUint32(b[n+64:], vhdChecksum(b[n:n+512], 64))
			}
		}), ErrCorrupt, "64 TiB"},
		{"BAT past end of file", mut(func(b []byte) {
			binary.BigEndian.PutUint64(b[512+16:], 1<<40)
			binary.BigEndian.PutUint32(b[512+36:], vhdChecksum(b[512:1536], 36))
		}), ErrCorrupt, "past the end"},
		{"truncated fixed VHD", func() []byte {
			f := NewFixedFooter(1<<20, [16]byte{}, time.Time{}).Marshal()
			return append(make([]byte, 4096), f...)
		}(), ErrCorrupt, "truncated"},
		{"VHDX too short", append([]byte(vhdxSignature), make([]byte, 100)...), ErrCorrupt, "shorter"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_"), c.data)
			img, err := Open(p)
			if err == nil {
				img.Close()
				t.Fatal("opened a bad image")
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %q: want %v mentioning %q", err, c.is, c.text)
			}
		})
	}
}

func TestGeometry(t *testing.T) {
	// Values computed by hand from the specification's algorithm.
	cases := []struct {
		size    int64
		c       uint16
		h, spt  uint8
		product int64
	}{
		{1 << 20, 30, 4, 17, 0},
		{100 << 20, 1003, 12, 17, 0},
		{127 << 30, 65278, 16, 255, 0},
		{3 << 40, 65535, 16, 255, 0},
	}
	for _, c := range cases {
		gc, gh, gs := Geometry(c.size)
		if gc != c.c || gh != c.h || gs != c.spt {
			t.Errorf("Geometry(%d) = %d/%d/%d, want %d/%d/%d", c.size, gc, gh, gs, c.c, c.h, c.spt)
		}
		if int64(gc)*int64(gh)*int64(gs)*512 > c.size {
			t.Errorf("Geometry(%d) describes more than the disk", c.size)
		}
	}
}

func TestCheckAzureVHD(t *testing.T) {
	dir := t.TempDir()
	good := append(make([]byte, 1<<20), NewFixedFooter(1<<20, [16]byte{}, time.Now()).Marshal()...)
	withFooter := func(size int64, edit func(f *Footer), dataLen int) []byte {
		f := NewFixedFooter(size, [16]byte{}, time.Now())
		edit(f)
		return append(make([]byte, dataLen), f.Marshal()...)
	}
	badSum := append([]byte(nil), good...)
	badSum[len(badSum)-512+70]++
	cases := []struct {
		name   string
		data   []byte
		ready  bool
		checks []string
	}{
		{"ready", good, true, nil},
		{"bad checksum", badSum, false, []string{"checksum"}},
		{"dynamic", buildDynamicVHD(1<<20, 1<<16, nil, nil), false, []string{"type"}},
		{"size not whole MiB", withFooter(1<<20+512, func(*Footer) {}, 1<<20+512), false, []string{"size"}},
		{"file size mismatch", withFooter(1<<20, func(*Footer) {}, 1<<20+4096), false, []string{"file-size"}},
		{"odd geometry", withFooter(1<<20, func(f *Footer) { f.Cylinders = 7 }, 1<<20), true, []string{"geometry"}},
		{"raw", make([]byte, 1<<20), false, []string{"footer"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_"), c.data)
			r, err := CheckAzureVHD(p)
			if err != nil {
				t.Fatal(err)
			}
			if r.Ready != c.ready {
				t.Fatalf("ready = %v, want %v (%+v)", r.Ready, c.ready, r.Findings)
			}
			var got []string
			for _, f := range r.Findings {
				got = append(got, f.Check)
				if f.Fix == "" {
					t.Errorf("finding %s has no fix", f.Check)
				}
			}
			if strings.Join(got, ",") != strings.Join(c.checks, ",") {
				t.Fatalf("findings %v, want %v", got, c.checks)
			}
		})
	}
}

// mbrDisk returns a disk image with an MBR and, optionally, a GPT.
func gptDisk(partTypes ...guid) []byte {
	b := make([]byte, 1<<20)
	b[510], b[511] = 0x55, 0xAA
	b[446+4] = 0xEE
	copy(b[512:], "EFI PART")
	binary.LittleEndian.PutUint64(b[512+72:], 2)
	binary.LittleEndian.PutUint32(b[512+80:], 128)
	binary.LittleEndian.PutUint32(b[512+84:], 128)
	for i, pt := range partTypes {
		copy(b[1024+128*i:], pt[:])
	}
	return b
}

func TestDetectGeneration(t *testing.T) {
	dir := t.TempDir()
	bootCode := make([]byte, 1<<20)
	copy(bootCode, []byte{0xEB, 0x63, 0x90})
	bootCode[510], bootCode[511] = 0x55, 0xAA
	active := make([]byte, 1<<20)
	active[446], active[446+4] = 0x80, 0x83
	active[510], active[511] = 0x55, 0xAA
	linuxType := parseGUID("0FC63DAF-8483-4772-8E79-3D69D8477DE4")
	cases := []struct {
		name string
		data []byte
		want Generation
	}{
		{"uefi gpt", gptDisk(linuxType, espType), GenerationV2},
		{"hybrid gpt", gptDisk(biosBootType, espType, linuxType), GenerationV2},
		{"bios gpt", gptDisk(biosBootType, linuxType), GenerationV1},
		{"mbr boot code", bootCode, GenerationV1},
		{"mbr active partition", active, GenerationV1},
		{"gpt without boot partition", gptDisk(linuxType), ""},
		{"blank", make([]byte, 1<<20), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img := mustOpen(t, writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_"), c.data))
			g, err := DetectGeneration(img)
			if c.want == "" {
				if err == nil || !strings.Contains(err.Error(), "set it explicitly") {
					t.Fatalf("got %q, %v; want an error asking to set the generation", g, err)
				}
				return
			}
			if err != nil || g != c.want {
				t.Fatalf("got %q, %v; want %s", g, err, c.want)
			}
		})
	}
}

func TestConvertRefusesAndCleansUp(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, 8<<20, scatteredPatterns(8<<20, 7))
	out := filepath.Join(dir, "out.vhd")
	if err := os.WriteFile(out, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ConvertFile(context.Background(), raw, out, ConvertOptions{To: FormatVHDFixed}); err == nil || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("overwrote without permission: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "keep me" {
		t.Fatal("existing output changed")
	}
	if _, err := ConvertFile(context.Background(), raw, raw, ConvertOptions{To: FormatRaw, Overwrite: true}); err == nil || !strings.Contains(err.Error(), "same file") {
		t.Fatalf("converted a file onto itself: %v", err)
	}
	if _, err := ConvertFile(context.Background(), raw, out, ConvertOptions{To: "qcow2", Overwrite: true}); err == nil {
		t.Fatal("accepted an unknown output format")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ConvertFile(ctx, raw, filepath.Join(dir, "cancelled.vhd"), ConvertOptions{To: FormatVHDFixed}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled conversion: %v", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "src.raw" && e.Name() != "out.vhd" {
			t.Fatalf("left %s behind", e.Name())
		}
	}
	if _, err := ConvertFile(context.Background(), raw, out, ConvertOptions{To: FormatVHDFixed, Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if r, err := CheckAzureVHD(out); err != nil || !r.Ready {
		t.Fatalf("overwritten output not ready: %+v %v", r, err)
	}
}

// TestFourKSectors: a VHDX with 4096-byte logical sectors keeps them when
// converted to VHDX, and is refused for a (512-byte sector) VHD.
func TestFourKSectors(t *testing.T) {
	dir := t.TempDir()
	size := int64(6 << 20)
	pats := scatteredPatterns(size, 13)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, size, pats)
	p := filepath.Join(dir, "4k.vhdx")
	if _, err := ConvertFile(context.Background(), raw, p, ConvertOptions{To: FormatVHDX, BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	// imgpipe's layout puts the logical sector size item at 64 KiB + 32 in
	// the metadata region.
	if _, err := f.WriteAt([]byte{0, 0x10, 0, 0}, vhdxMetaOff+64<<10+32); err != nil {
		t.Fatal(err)
	}
	f.Close()
	img := mustOpen(t, p)
	if got := img.(Describer).Info().LogicalSectorSize; got != 4096 {
		t.Fatalf("logical sector size %d", got)
	}
	if _, err := Convert(context.Background(), img, filepath.Join(dir, "out.vhd"), ConvertOptions{To: FormatVHDFixed}); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "512-byte logical sectors") {
		t.Fatalf("4K source to VHD: %v", err)
	}
	out := filepath.Join(dir, "out.vhdx")
	if _, err := Convert(context.Background(), img, out, ConvertOptions{To: FormatVHDX}); err != nil {
		t.Fatal(err)
	}
	back := mustOpen(t, out)
	if got := back.(Describer).Info().LogicalSectorSize; got != 4096 {
		t.Fatalf("output logical sector size %d", got)
	}
	equalBytes(t, "4K VHDX round trip", readAll(t, back), expected(size, pats))
}

// BenchmarkConvertToFixedVHD converts a 1 GiB-virtual dynamic VHDX (written
// by imgpipe) holding 64 MiB of scattered data into an Azure-ready VHD.
// bench/disk-convert.sh runs the full-size comparison with qemu-img.
func BenchmarkConvertToFixedVHD(b *testing.B) {
	dir := b.TempDir()
	size := int64(1 << 30)
	var pats []pattern
	for i := int64(0); i < 64; i++ {
		p := randomSector(uint64(i))
		data := make([]byte, 0, 1<<20)
		for len(data) < 1<<20 {
			data = append(data, p...)
		}
		pats = append(pats, pattern{i*(size/64) + i*4096, data})
	}
	raw := filepath.Join(dir, "src.raw")
	writeRaw(b, raw, size, pats)
	src := filepath.Join(dir, "src.vhdx")
	if _, err := ConvertFile(context.Background(), raw, src, ConvertOptions{To: FormatVHDX}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(64 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ConvertFile(context.Background(), src, filepath.Join(dir, "out.vhd"), ConvertOptions{To: FormatVHDFixed, Overwrite: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// TestVHDXOpenErrors damages an imgpipe-written VHDX in the ways the
// specification says must be detected.
func TestVHDXOpenErrors(t *testing.T) {
	dir := t.TempDir()
	size := int64(3 << 20)
	pats := scatteredPatterns(size, 14)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, size, pats)
	good := filepath.Join(dir, "good.vhdx")
	if _, err := ConvertFile(context.Background(), raw, good, ConvertOptions{To: FormatVHDX, BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	base, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	le32 := func(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
	le64 := func(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }
	item := int64(vhdxMetaOff + 64<<10) // imgpipe's metadata items start here
	type edit struct {
		off int64
		b   []byte
	}
	cases := []struct {
		name  string
		edits []edit
		is    error // nil: must open and read correctly
		text  string
	}{
		{"one header damaged", []edit{{128<<10 + 100, []byte{1}}}, nil, ""},
		{"both headers damaged", []edit{{64<<10 + 100, []byte{1}}, {128<<10 + 100, []byte{1}}}, ErrCorrupt, "both VHDX headers"},
		{"one region table damaged", []edit{{192<<10 + 100, []byte{1}}}, nil, ""},
		{"both region tables damaged", []edit{{192<<10 + 100, []byte{1}}, {256<<10 + 100, []byte{1}}}, ErrCorrupt, "region table"},
		{"has parent", []edit{{item + 4, le32(2)}}, ErrUnsupported, "differencing"},
		{"virtual size 2^62", []edit{{item + 8, le64(1 << 62)}}, ErrCorrupt, "64 TiB"},
		{"virtual size needs a huge BAT", []edit{{item + 8, le64(60 << 40)}}, ErrCorrupt, "BAT region"},
		{"block size not a power of two", []edit{{item, le32(3 << 20)}}, ErrCorrupt, "block size"},
		{"logical sector 1000", []edit{{item + 32, le32(1000)}}, ErrCorrupt, "logical sector"},
		{"BAT entry past the end", []edit{{vhdxBATOff, le64(uint64(1<<40) | batFully)}}, ErrCorrupt, "outside"},
		{"BAT entry invalid state", []edit{{vhdxBATOff, le64(4)}}, ErrCorrupt, "invalid state"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := append([]byte(nil), base...)
			for _, e := range c.edits {
				if len(e.b) == 1 {
					b[e.off] ^= e.b[0]
				} else {
					copy(b[e.off:], e.b)
				}
			}
			p := writeFile(t, dir, strings.ReplaceAll(c.name, " ", "_")+".vhdx", b)
			img, err := Open(p)
			if c.is == nil {
				if err != nil {
					t.Fatalf("did not fall back to the good copy: %v", err)
				}
				defer img.Close()
				equalBytes(t, "content", readAll(t, img), expected(size, pats))
				return
			}
			if err == nil {
				img.Close()
				t.Fatal("opened a damaged VHDX")
			}
			if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.text) {
				t.Fatalf("error %q: want %v mentioning %q", err, c.is, c.text)
			}
		})
	}
}
