package disk

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/testenv"
)

// The oracle tests check imgpipe against qemu-img, an independent
// implementation of the same formats: images made by qemu-img are read and
// converted by imgpipe, and images written by imgpipe are read by qemu-img.

const oracleSize = 40<<20 + 7*512 // not a whole MiB, not a whole block

var qemuSources = []struct {
	name   string
	qfmt   string // qemu format name
	opts   string // -o for qemu-img convert
	format Format
	// sizeFn gives the virtual size qemu makes for a requested size.
	chsRounded bool
}{
	{"vhdx-dynamic-1M", "vhdx", "subformat=dynamic,block_size=1M", FormatVHDX, false},
	{"vhdx-dynamic-8M", "vhdx", "subformat=dynamic,block_size=8M", FormatVHDX, false},
	{"vhdx-dynamic-32M", "vhdx", "subformat=dynamic,block_size=32M", FormatVHDX, false},
	{"vhdx-fixed", "vhdx", "subformat=fixed", FormatVHDX, false},
	{"vpc-dynamic", "vpc", "subformat=dynamic", FormatVHDDynamic, true},
	{"vpc-dynamic-force-size", "vpc", "subformat=dynamic,force_size=on", FormatVHDDynamic, false},
	{"vpc-fixed", "vpc", "subformat=fixed,force_size=on", FormatVHDFixed, false},
	{"raw", "raw", "", FormatRaw, false},
}

func TestOracleQemuImagesReadAndConvert(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	pats := scatteredPatterns(oracleSize, 1)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, oracleSize, pats)
	want := expected(oracleSize, pats)

	for _, src := range qemuSources {
		t.Run(src.name, func(t *testing.T) {
			in := filepath.Join(dir, src.name+"."+src.qfmt)
			args := []string{"convert", "-f", "raw", "-O", src.qfmt}
			if src.opts != "" {
				args = append(args, "-o", src.opts)
			}
			run(t, "qemu-img", append(args, raw, in)...)

			img := mustOpen(t, in)
			if img.Format() != src.format {
				t.Fatalf("format %s, want %s", img.Format(), src.format)
			}
			wantSize := int64(oracleSize)
			if src.chsRounded {
				// qemu rounds a CHS-sized VHD up to its geometry.
				if img.Size() < wantSize || img.Size() > wantSize+16*255*512 {
					t.Fatalf("size %d, want about %d", img.Size(), wantSize)
				}
				wantSize = img.Size()
			} else if img.Size() != wantSize {
				t.Fatalf("size %d, want %d", img.Size(), wantSize)
			}
			wantHere := append(append([]byte(nil), want...), make([]byte, wantSize-oracleSize)...)
			equalBytes(t, "content read by imgpipe", readAll(t, img), wantHere)
			checkExtents(t, img, wantHere)

			for _, to := range []struct {
				format Format
				qfmt   string
				ext    string
			}{{FormatVHDFixed, "vpc", "vhd"}, {FormatVHDX, "vhdx", "vhdx"}, {FormatRaw, "raw", "img"}} {
				out := filepath.Join(dir, fmt.Sprintf("%s-to.%s", src.name, to.ext))
				res, err := Convert(context.Background(), img, out, ConvertOptions{To: to.format, BlockSize: 1 << 20})
				if err != nil {
					t.Fatalf("convert to %s: %v", to.format, err)
				}
				// qemu-img compare: the extra zero tail of an aligned output is allowed.
				cmp := run(t, "qemu-img", "compare", "-f", "raw", "-F", to.qfmt, raw, out)
				if !strings.Contains(cmp, "identical") {
					t.Fatalf("qemu-img compare %s: %s", to.format, cmp)
				}
				switch to.format {
				case FormatVHDX:
					run(t, "qemu-img", "check", "-f", "vhdx", out)
				case FormatVHDFixed:
					info := run(t, "qemu-img", "info", "-f", "vpc", "--output", "json", out)
					if !strings.Contains(info, fmt.Sprintf(`"virtual-size": %d,`, AlignMiB(wantSize))) {
						t.Fatalf("qemu-img info does not see a %d-byte disk:\n%s", AlignMiB(wantSize), info)
					}
					r, err := CheckAzureVHD(out)
					if err != nil || !r.Ready || len(r.Findings) != 0 {
						t.Fatalf("imgpipe's fixed VHD is not Azure-ready: %+v %v", r, err)
					}
					if res.VirtualSize != AlignMiB(wantSize) {
						t.Fatalf("result virtual size %d, want %d", res.VirtualSize, AlignMiB(wantSize))
					}
				}
			}
		})
	}
}

// TestOracleQemuReadsImgpipeOutput is the reverse direction: qemu-img
// converts what imgpipe wrote back to raw, and the bytes must match.
func TestOracleQemuReadsImgpipeOutput(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	pats := scatteredPatterns(oracleSize, 2)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, oracleSize, pats)
	src := mustOpen(t, raw)
	for _, c := range []struct {
		format    Format
		qfmt      string
		blockSize int64
	}{{FormatVHDFixed, "vpc", 0}, {FormatVHDX, "vhdx", 0}, {FormatVHDX, "vhdx", 1 << 20}, {FormatVHDX, "vhdx", 256 << 20}} {
		t.Run(fmt.Sprintf("%s-%d", c.format, c.blockSize), func(t *testing.T) {
			out := filepath.Join(dir, fmt.Sprintf("out-%d.%s", c.blockSize, c.qfmt))
			if _, err := Convert(context.Background(), src, out, ConvertOptions{To: c.format, BlockSize: c.blockSize}); err != nil {
				t.Fatal(err)
			}
			back := out + ".raw"
			run(t, "qemu-img", "convert", "-f", c.qfmt, "-O", "raw", out, back)
			cmp := run(t, "qemu-img", "compare", "-f", "raw", "-F", "raw", raw, back)
			if !strings.Contains(cmp, "identical") {
				t.Fatal(cmp)
			}
			if c.format == FormatVHDX {
				run(t, "qemu-img", "check", "-f", "vhdx", out)
				// and imgpipe reads its own VHDX back
				got := readAll(t, mustOpen(t, out))
				equalBytes(t, "imgpipe VHDX read back", got, expected(oracleSize, pats))
			}
		})
	}
}

// TestAzureViewEqualsConvertedFile checks that the streaming view and the
// file written by Convert are the same bytes, and that the view is stable.
func TestAzureViewEqualsConvertedFile(t *testing.T) {
	dir := t.TempDir()
	pats := scatteredPatterns(oracleSize, 3)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, oracleSize, pats)
	out := filepath.Join(dir, "out.vhd")
	if _, err := ConvertFile(context.Background(), raw, out, ConvertOptions{To: FormatVHDFixed}); err != nil {
		t.Fatal(err)
	}
	file, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	view := AzureVHD(mustOpen(t, raw))
	defer view.Close()
	if view.Size() != int64(len(file)) || view.Format() != FormatVHDFixed {
		t.Fatalf("view size %d format %s, file %d bytes", view.Size(), view.Format(), len(file))
	}
	equalBytes(t, "AzureVHD view vs converted file", readAll(t, view), file)
	ext, err := view.Extents()
	if err != nil {
		t.Fatal(err)
	}
	if last := ext[len(ext)-1]; last.Offset != view.Size()-512 || last.Length != 512 {
		t.Fatalf("the footer is not the last extent: %+v", last)
	}
	checkExtents(t, view, file)
	// a second view of the same source has the same footer
	view2 := AzureVHD(mustOpen(t, raw))
	equalBytes(t, "second view", readAll(t, view2), file)
	// reads past the end
	if n, err := view.ReadAt(make([]byte, 10), view.Size()); n != 0 || err == nil {
		t.Fatalf("read past end = %d, %v; want 0, EOF", n, err)
	}
}

// TestUnalignedLargeSparse converts a 10 GiB + 7 sectors sparse raw disk to
// an Azure-ready VHD: the size comes out a whole MiB, the output stays sparse
// and passes the check (and qemu-img agrees on the content).
func TestUnalignedLargeSparse(t *testing.T) {
	dir := t.TempDir()
	size := int64(10<<30 + 7*512)
	pats := scatteredPatterns(size, 4)
	raw := filepath.Join(dir, "big.raw")
	writeRaw(t, raw, size, pats)
	out := filepath.Join(dir, "big.vhd")
	var last, total int64
	res, err := ConvertFile(context.Background(), raw, out, ConvertOptions{To: FormatVHDFixed,
		Progress: func(d, tot int64) { last, total = d, tot }})
	if err != nil {
		t.Fatal(err)
	}
	if res.VirtualSize != 10<<30+1<<20 {
		t.Fatalf("virtual size %d, want %d", res.VirtualSize, int64(10<<30+1<<20))
	}
	if last != total || total == 0 {
		t.Fatalf("progress ended at %d of %d", last, total)
	}
	st, _ := os.Stat(out)
	if st.Size() != res.VirtualSize+512 {
		t.Fatalf("file size %d", st.Size())
	}
	if used := diskUsage(st); used > 64<<20 {
		t.Fatalf("output uses %d bytes on disk: not sparse", used)
	}
	r, err := CheckAzureVHD(out)
	if err != nil || !r.Ready {
		t.Fatalf("check: %+v %v", r, err)
	}
	img := mustOpen(t, out)
	for _, p := range pats {
		got := make([]byte, len(p.data))
		if _, err := img.ReadAt(got, p.off); err != nil {
			t.Fatal(err)
		}
		equalBytes(t, fmt.Sprintf("pattern at %d", p.off), got, p.data)
	}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		cmp := run(t, "qemu-img", "compare", "-f", "raw", "-F", "vpc", raw, out)
		if !strings.Contains(cmp, "identical") {
			t.Fatal(cmp)
		}
	}
}
