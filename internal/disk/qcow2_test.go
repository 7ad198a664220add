package disk

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/testenv"
)

// qcow2Stats counts the kinds of L2 entries of an opened qcow2, so that a
// test can show its fixture really exercises the path it is named after.
func qcow2Stats(t *testing.T, img Image) (data, zeros, compressed int) {
	t.Helper()
	q, ok := img.(*qcow2Image)
	if !ok {
		t.Fatalf("not a qcow2 image: %T", img)
	}
	for i := range q.l1 {
		tb, err := q.table(int64(i))
		if err != nil {
			t.Fatal(err)
		}
		for j := int64(0); j < int64(len(tb)); j += q.entryWords {
			d := tb[j]
			switch {
			case d&qcow2Compressed != 0:
				compressed++
			case q.extL2 && tb[j+1]>>32 != 0, !q.extL2 && d&qcow2ZeroFlag != 0:
				zeros++
			case d&qcow2OffsetMask != 0:
				data++
			}
		}
	}
	return
}

func writeBytes(t testing.TB, path string, b []byte) string {
	t.Helper()
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestQcow2Built reads images built in memory (no qemu needed): every
// cluster size QEMU allows, v2 and v3, zero clusters, both compressions and
// extended L2 entries, in a disk whose size is not a whole cluster.
func TestQcow2Built(t *testing.T) {
	for _, c := range []struct {
		name  string
		spec  qcowSpec
		zeros bool
	}{
		{"v3-64k", qcowSpec{clusterBits: 16}, true},
		{"v2-64k", qcowSpec{clusterBits: 16, version: 2}, false},
		{"v3-512", qcowSpec{clusterBits: 9}, true},
		{"v3-4k", qcowSpec{clusterBits: 12}, true},
		{"v3-2M", qcowSpec{clusterBits: 21}, true},
		{"zlib-4k", qcowSpec{clusterBits: 12, compress: "zlib"}, true},
		{"zlib-64k", qcowSpec{clusterBits: 16, compress: "zlib"}, true},
		{"zstd-64k", qcowSpec{clusterBits: 16, compress: "zstd"}, true},
		{"extl2-32k", qcowSpec{clusterBits: 15, extL2: true}, true},
		{"extl2-zstd-64k", qcowSpec{clusterBits: 16, extL2: true, compress: "zstd"}, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.spec
			cs := int64(1) << s.clusterBits
			s.size = 9*cs + 3*512 + cs*int64(max(1, 2<<20/cs)) // several L2 tables for small clusters
			last := (s.size - 1) / cs
			s.data = map[int64][]byte{0: textCluster(0, int(cs)), 2: textCluster(2, int(cs)-100), 3: textCluster(3, int(cs)), last: textCluster(last, int(cs))}
			if c.zeros {
				s.zeros = []int64{1, 5}
			}
			b := buildQcow2(t, s)
			want := make([]byte, s.size)
			for cl, d := range s.data {
				copy(want[cl*cs:], d)
			}
			img := mustOpen(t, writeBytes(t, filepath.Join(t.TempDir(), "x.qcow2"), b))
			if img.Format() != FormatQcow2 || img.Size() != s.size {
				t.Fatalf("format %s size %d, want qcow2 %d", img.Format(), img.Size(), s.size)
			}
			equalBytes(t, "content", readAll(t, img), want)
			checkExtents(t, img, want)
			ext, _ := img.Extents()
			if got, max := AllocatedBytes(ext), int64(len(s.data))*cs; got > max {
				t.Fatalf("allocated %d bytes, at most %d expected (zero clusters must not count)", got, max)
			}
			data, zeros, comp := qcow2Stats(t, img)
			if (s.compress != "") != (comp == len(s.data)) || (s.compress == "" && data != len(s.data)) || zeros != len(s.zeros) {
				t.Fatalf("fixture has %d data, %d zero, %d compressed clusters", data, zeros, comp)
			}
			info := img.(Describer).Info()
			if info.FormatVersion != int(max(2, s.version)) && !(s.version == 0 && info.FormatVersion == 3) {
				t.Fatalf("format version %d", info.FormatVersion)
			}
			if info.BlockSize != cs || info.ExtendedL2 != s.extL2 {
				t.Fatalf("info %+v", info)
			}
		})
	}
}

// qemuQcow2Fixtures makes qcow2 files the way users get them from qemu-img
// and QEMU, from the raw disk at raw.
func qemuQcow2Fixtures(t *testing.T, dir, raw string) map[string]string {
	t.Helper()
	conv := func(name string, opts ...string) string {
		out := filepath.Join(dir, name+".qcow2")
		run(t, "qemu-img", append(append([]string{"convert", "-f", "raw", "-O", "qcow2"}, opts...), raw, out)...)
		return out
	}
	size := fmt.Sprint(oracleSize)
	io := func(name string, create []string, cmds ...string) string {
		out := filepath.Join(dir, name+".qcow2")
		if create == nil {
			run(t, "qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, out)
		} else {
			run(t, "qemu-img", append(append([]string{"create", "-f", "qcow2"}, create...), out, size)...)
		}
		args := []string{"-f", "qcow2"}
		for _, c := range cmds {
			args = append(args, "-c", c)
		}
		run(t, "qemu-io", append(args, out)...)
		return out
	}
	// an internal snapshot, then new writes: the active state is read, the
	// snapshot's clusters (shared, refcount 2) are not counted twice
	snapshot := func() string {
		out := conv("snapshot")
		run(t, "qemu-img", "snapshot", "-c", "s1", out)
		run(t, "qemu-io", "-f", "qcow2", "-c", "write -P 0x77 0 128k", "-c", "write -P 0x78 35M 1M", out)
		return out
	}
	return map[string]string{
		"v3-64k":           conv("v3-64k"),
		"v2-64k":           conv("v2-64k", "-o", "compat=0.10"),
		"v3-512":           conv("v3-512", "-o", "cluster_size=512"),
		"v3-4k":            conv("v3-4k", "-o", "cluster_size=4k"),
		"v3-2M":            conv("v3-2M", "-o", "cluster_size=2M"),
		"zlib":             conv("zlib", "-c"),
		"zlib-4k":          conv("zlib-4k", "-c", "-o", "cluster_size=4k"),
		"zstd":             conv("zstd", "-c", "-o", "compression_type=zstd"),
		"zstd-2M":          conv("zstd-2M", "-c", "-o", "compression_type=zstd,cluster_size=2M"),
		"v2-zlib":          conv("v2-zlib", "-c", "-o", "compat=0.10"),
		"extl2-128k":       conv("extl2-128k", "-o", "extended_l2=on,cluster_size=128k"),
		"extl2-zstd":       conv("extl2-zstd", "-c", "-o", "extended_l2=on,compression_type=zstd"),
		"zero-clusters":    io("zero-clusters", nil, "write -z 1M 2M", "write -z -u 8M 1M", "write -P 0x5a 30M 64k"),
		"extl2-zero":       io("extl2-zero", []string{"-o", "extended_l2=on"}, "write -P 0x33 0 3M", "write -z 40k 8k", "write -z -u 1M 100k", "write -P 0x44 20M 4k"),
		"prealloc-meta":    io("prealloc-meta", []string{"-o", "preallocation=metadata"}, "write -P 0x11 5M 100k", "write -P 0x22 39M 512"),
		"random-order":     io("random-order", []string{}, "write -P 0x61 30M 1M", "write -P 0x62 0 64k", "write -P 0x63 10M 300k", "write -P 0x64 1M 4k"),
		"v2-zero-detected": io("v2-zero-detected", []string{"-o", "compat=0.10"}, "write -P 0x71 0 1M", "write -z 256k 256k"),
		"snapshot":         snapshot(),
	}
}

// TestQcow2Oracle reads qcow2 files made by qemu-img and qemu-io: imgpipe's
// bytes equal qemu-img's raw conversion, and every output format imgpipe
// writes is identical to the source per qemu-img compare.
func TestQcow2Oracle(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	testenv.RequireTool(t, "qemu-io")
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	pats := scatteredPatterns(oracleSize, 21)
	// compressible data too, so that -c really makes compressed clusters
	pats = append(pats, pattern{12 << 20, textCluster(7, 3<<20+4096)})
	writeRaw(t, raw, oracleSize, pats)
	fixtures := qemuQcow2Fixtures(t, dir, raw)
	for name, path := range fixtures {
		t.Run(name, func(t *testing.T) {
			oracle := path + ".oracle.raw"
			run(t, "qemu-img", "convert", "-f", "qcow2", "-O", "raw", path, oracle)
			want, err := os.ReadFile(oracle)
			if err != nil {
				t.Fatal(err)
			}
			img := mustOpen(t, path)
			if img.Format() != FormatQcow2 || img.Size() != int64(len(want)) {
				t.Fatalf("format %s size %d, want qcow2 %d", img.Format(), img.Size(), len(want))
			}
			equalBytes(t, "content read by imgpipe vs qemu-img", readAll(t, img), want)
			checkExtents(t, img, want)
			data, zeros, comp := qcow2Stats(t, img)
			switch {
			case strings.Contains(name, "zlib") || strings.Contains(name, "zstd"):
				if comp == 0 {
					t.Fatal("fixture has no compressed cluster")
				}
			case strings.Contains(name, "zero"):
				if zeros == 0 && !strings.HasPrefix(name, "v2") {
					t.Fatal("fixture has no zero cluster")
				}
			}
			if data+comp == 0 {
				t.Fatal("fixture has no data")
			}
			if name == "prealloc-meta" {
				ext, _ := img.Extents()
				if a := AllocatedBytes(ext); a > 1<<20 {
					t.Fatalf("preallocated metadata counted as data: %d bytes allocated", a)
				}
			}
			for _, to := range []struct {
				format Format
				qfmt   string
			}{{FormatVHDFixed, "vpc"}, {FormatVHDX, "vhdx"}, {FormatRaw, "raw"}} {
				out := filepath.Join(dir, name+"-to-"+string(to.format))
				if _, err := Convert(context.Background(), img, out, ConvertOptions{To: to.format, BlockSize: 1 << 20}); err != nil {
					t.Fatalf("convert to %s: %v", to.format, err)
				}
				cmp := run(t, "qemu-img", "compare", "-f", "qcow2", "-F", to.qfmt, path, out)
				if !strings.Contains(cmp, "identical") {
					t.Fatalf("qemu-img compare to %s: %s", to.format, cmp)
				}
				if to.format == FormatVHDFixed {
					if r, err := CheckAzureVHD(out); err != nil || !r.Ready {
						t.Fatalf("fixed VHD from qcow2 not Azure-ready: %+v %v", r, err)
					}
				}
				os.Remove(out)
			}
		})
	}
}

// TestQcow2PackerLike converts a qcow2 laid out like Packer's qemu builder
// leaves it (a partitioned disk with an ext4 file system holding files,
// written into an empty qcow2) and checks the result with qemu-img.
func TestQcow2PackerLike(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	testenv.RequireTool(t, "mkfs.ext4")
	testenv.RequireTool(t, "sfdisk")
	dir := t.TempDir()
	root := filepath.Join(dir, "root")
	for i, name := range []string{"etc/hostname", "etc/os-release", "usr/bin/tool", "var/log/build.log"} {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		writeBytes(t, p, textCluster(int64(i), 200<<10+i*4097))
	}
	fs := filepath.Join(dir, "fs.ext4")
	run(t, "mkfs.ext4", "-q", "-F", "-d", root, fs, "60M")
	raw := filepath.Join(dir, "disk.raw")
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	f.Truncate(64 << 20)
	f.Close()
	cmd := exec.Command("sfdisk", "-q", raw)
	cmd.Stdin = strings.NewReader("label: gpt\nstart=2048, size=122880, type=0FC63DAF-8483-4772-8E3D-E47D7D69C477\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sfdisk: %v %s", err, out)
	}
	run(t, "dd", "if="+fs, "of="+raw, "bs=1M", "seek=1", "conv=notrunc,sparse", "status=none")
	q := filepath.Join(dir, "packer.qcow2")
	run(t, "qemu-img", "create", "-q", "-f", "qcow2", q, "64M")
	run(t, "qemu-img", "convert", "-n", "-f", "raw", "-O", "qcow2", raw, q) // into the existing image, as a guest writes it
	img := mustOpen(t, q)
	if g, err := DetectGeneration(img); err != nil || g != GenerationV2 && g != GenerationV1 {
		t.Logf("generation %v %v (no ESP: expected)", g, err)
	}
	out := filepath.Join(dir, "packer.vhd")
	if _, err := Convert(context.Background(), img, out, ConvertOptions{To: FormatVHDFixed}); err != nil {
		t.Fatal(err)
	}
	if cmp := run(t, "qemu-img", "compare", "-f", "qcow2", "-F", "vpc", q, out); !strings.Contains(cmp, "identical") {
		t.Fatal(cmp)
	}
	ext, _ := img.Extents()
	if a := AllocatedBytes(ext); a == 0 || a > 32<<20 {
		t.Fatalf("allocated %d bytes of a 64 MiB disk holding about 1 MiB of files", a)
	}
}

// TestQcow2Refusals: each feature imgpipe does not read is refused with an
// error that names it and says what to run.
func TestQcow2Refusals(t *testing.T) {
	dir := t.TempDir()
	base := qcowSpec{size: 4 << 20, clusterBits: 16, data: map[int64][]byte{0: textCluster(0, 4096)}}
	built := func(name string, mutate func(b []byte)) string {
		b := buildQcow2(t, base)
		mutate(b)
		return writeBytes(t, filepath.Join(dir, name+".qcow2"), b)
	}
	setInc := func(bits uint64) func([]byte) {
		return func(b []byte) { binary.BigEndian.PutUint64(b[72:], binary.BigEndian.Uint64(b[72:])|bits) }
	}
	cases := []struct {
		name, path string
		kind       error
		want       []string
	}{
		{"dirty", built("dirty", setInc(qcow2IncompatDirty)), ErrUnsupported, []string{"not closed cleanly", "qemu-img check -r all"}},
		{"corrupt", built("corrupt", setInc(qcow2IncompatCorrupt)), ErrCorrupt, []string{"marked this qcow2 corrupt", "qemu-img check -r all"}},
		{"unknown-bit", built("unknown", setInc(1<<9)), ErrUnsupported, []string{"bit 9", "qemu-img convert -O qcow2"}},
		{"ext-data-bit", built("extdata", setInc(qcow2IncompatExtData)), ErrUnsupported, []string{"external data file", "qemu-img convert -O qcow2"}},
		{"aes", built("aes", func(b []byte) { binary.BigEndian.PutUint32(b[32:], 1) }), ErrUnsupported, []string{"encrypted qcow2 (AES)", "encrypt.key-secret"}},
		{"backing", built("backing", func(b []byte) {
			copy(b[1024:], "base.qcow2")
			binary.BigEndian.PutUint64(b[8:], 1024)
			binary.BigEndian.PutUint32(b[16:], 10)
		}), ErrUnsupported, []string{`backing file "base.qcow2"`, "qemu-img convert -O qcow2"}},
		{"version-4", built("v4", func(b []byte) { binary.BigEndian.PutUint32(b[4:], 4) }), ErrUnsupported, []string{"qcow2 version 4"}},
		{"compression-type-7", built("ct7", func(b []byte) {
			setInc(qcow2IncompatCompression)(b)
			b[104] = 7
		}), ErrUnsupported, []string{"compression type 7"}},
	}
	if _, err := exec.LookPath("qemu-img"); err == nil {
		baseImg := filepath.Join(dir, "base.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", baseImg, "4M")
		overlay := filepath.Join(dir, "overlay.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-b", baseImg, "-F", "qcow2", overlay)
		luks := filepath.Join(dir, "luks.qcow2")
		// qemu-img times PBKDF2 with CPU time and fails now and then on a loaded machine ("Unable
		// to get accurate CPU usage"): try a few times.
		for try := 0; ; try++ {
			out, err := exec.Command("qemu-img", "create", "-q", "--object", "secret,id=s0,data=pw", "-f", "qcow2", "-o", "encrypt.format=luks,encrypt.key-secret=s0,encrypt.iter-time=50", luks, "4M").CombinedOutput()
			if err == nil {
				break
			}
			if try == 4 {
				t.Fatalf("qemu-img create (LUKS): %v\n%s", err, out)
			}
		}
		ext := filepath.Join(dir, "ext.qcow2")
		run(t, "qemu-img", "create", "-q", "-f", "qcow2", "-o", "data_file="+filepath.Join(dir, "ext.data"), ext, "4M")
		cases = append(cases,
			struct {
				name, path string
				kind       error
				want       []string
			}{"qemu-backing", overlay, ErrUnsupported, []string{"backing file", "base.qcow2", "qemu-img convert -O qcow2"}},
			struct {
				name, path string
				kind       error
				want       []string
			}{"qemu-luks", luks, ErrUnsupported, []string{"encrypted qcow2 (LUKS)"}},
			struct {
				name, path string
				kind       error
				want       []string
			}{"qemu-external-data", ext, ErrUnsupported, []string{"external data file", "ext.data"}})
	} else if testenv.InCI() {
		t.Fatal("qemu-img is missing under IMGPIPE_CI=1")
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := Open(c.path)
			if err == nil {
				img.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, c.kind) {
				t.Fatalf("error %v is not %v", err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
		})
	}
}

// TestQcow2Hostile: structurally invalid images are refused as corrupt, not
// read (and never amplified: a table or cluster used twice is refused).
func TestQcow2Hostile(t *testing.T) {
	base := qcowSpec{size: 1 << 30, clusterBits: 16, data: map[int64][]byte{0: textCluster(0, 65536), 1: textCluster(1, 65536), 9000 / 64: textCluster(2, 100)}}
	// layout of base: 0 header, 64K L1, 128K first L2, 192K.. data
	const l1, l2 = 64 << 10, 128 << 10
	put := func(off int64, v uint64) func([]byte) []byte {
		return func(b []byte) []byte { binary.BigEndian.PutUint64(b[off:], v); return b }
	}
	cases := map[string]func([]byte) []byte{
		"cluster bits 30":          func(b []byte) []byte { binary.BigEndian.PutUint32(b[20:], 30); return b },
		"cluster bits 8":           func(b []byte) []byte { binary.BigEndian.PutUint32(b[20:], 8); return b },
		"virtual size 2^62":        put(24, 1<<62),
		"virtual size 0":           put(24, 0),
		"L1 too short":             func(b []byte) []byte { binary.BigEndian.PutUint32(b[36:], 0); return b },
		"L1 past EOF":              put(40, 1<<40),
		"L1 unaligned":             put(40, l1+8),
		"L1 reserved bits":         put(l1, l2|1<<60),
		"L2 past EOF":              put(l1, 1<<40),
		"L2 unaligned":             put(l1, l2+512),
		"L2 is the L1":             put(l1, l1),
		"L2 shared by two entries": func(b []byte) []byte { return put(l1+8, l2)(b) },
		"data cluster twice":       func(b []byte) []byte { return put(l2+8, binary.BigEndian.Uint64(b[l2:]))(b) },
		"data is the L2 table":     put(l2, l2),
		"data past EOF":            put(l2, 1<<40),
		"data unaligned":           put(l2, 192<<10+512),
		"L2 reserved bits":         put(l2, 192<<10|1<<58),
		"compressed at 0":          put(l2, qcow2Compressed),
		"compressed past EOF":      put(l2, qcow2Compressed|1<<45),
		"truncated":                func(b []byte) []byte { return b[:l2+100] },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			b := mutate(buildQcow2(t, base))
			img, err := Open(writeBytes(t, filepath.Join(t.TempDir(), "h.qcow2"), b))
			if err == nil {
				img.Close()
				t.Fatal("opened")
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v is not corrupt", err)
			}
		})
	}
	t.Run("compressed data shared", func(t *testing.T) {
		s := base
		s.compress = "zlib"
		b := buildQcow2(t, s)
		put(l2+8, binary.BigEndian.Uint64(b[l2:]))(b)
		if _, err := Open(writeBytes(t, filepath.Join(t.TempDir(), "h.qcow2"), b)); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v, want corrupt", err)
		}
	})
	t.Run("compressed garbage reads as an error", func(t *testing.T) {
		s := base
		s.compress = "zstd"
		b := buildQcow2(t, s)
		host, _ := (&qcow2Image{clusterBits: 16}).compressedRange(binary.BigEndian.Uint64(b[l2:]))
		copy(b[host:], "garbage!")
		img := mustOpen(t, writeBytes(t, filepath.Join(t.TempDir(), "h.qcow2"), b))
		if _, err := img.ReadAt(make([]byte, 4096), 0); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("read of a broken compressed cluster: %v, want corrupt", err)
		}
	})
}

// TestQcow2BoundedWork: a small file claiming the largest disk opens fast
// and reports only what it holds; opening honours the context.
func TestQcow2BoundedWork(t *testing.T) {
	s := qcowSpec{size: maxVirtualSize, clusterBits: 16, data: map[int64][]byte{}}
	for i := int64(0); i < 50; i++ {
		s.data[i*(8192*3+1)] = textCluster(i, 512) // 50 L2 tables, far apart
	}
	b := buildQcow2(t, s)
	if len(b) > 16<<20 {
		t.Fatalf("fixture is %d bytes", len(b))
	}
	path := writeBytes(t, filepath.Join(t.TempDir(), "huge.qcow2"), b)
	start := time.Now()
	img := mustOpen(t, path)
	ext, _ := img.Extents()
	if img.Size() != maxVirtualSize || AllocatedBytes(ext) != 50<<16 {
		t.Fatalf("size %d allocated %d", img.Size(), AllocatedBytes(ext))
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("open took %v", d)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenContext(ctx, path); !errors.Is(err, context.Canceled) {
		t.Fatalf("open with a cancelled context: %v", err)
	}
	// one byte more than the L1 table the size needs: refused, not read
	binary.BigEndian.PutUint64(b[24:], maxVirtualSize+1)
	if _, err := Open(writeBytes(t, path, b)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("size past 64 TiB: %v", err)
	}
}

// TestQcow2TablesOnDemand: with a tiny table budget the L2 tables are
// re-read from the file as needed, concurrently, with the same result.
func TestQcow2TablesOnDemand(t *testing.T) {
	old := qcow2L2CacheBytes
	qcow2L2CacheBytes = 2 << 12 // two 4 KiB tables
	t.Cleanup(func() { qcow2L2CacheBytes = old })
	s := qcowSpec{size: 64 << 20, clusterBits: 12, compress: "zstd", data: map[int64][]byte{}}
	for c := int64(0); c < 16384; c += 97 {
		s.data[c] = textCluster(c, 4096)
	}
	want := make([]byte, s.size)
	for c, d := range s.data {
		copy(want[c<<12:], d)
	}
	img := mustOpen(t, writeBytes(t, filepath.Join(t.TempDir(), "d.qcow2"), buildQcow2(t, s)))
	if q := img.(*qcow2Image); len(q.l2) != 2 {
		t.Fatalf("%d tables kept at open, want 2", len(q.l2))
	}
	out := filepath.Join(t.TempDir(), "d.raw")
	if _, err := Convert(context.Background(), img, out, ConvertOptions{To: FormatRaw, Workers: 4}); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	equalBytes(t, "converted with tables on demand", got, want)
	equalBytes(t, "read with tables on demand", readAll(t, img), want)
}
