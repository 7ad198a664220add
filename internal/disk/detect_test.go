package disk

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/testenv"
)

// TestDetectRefusals: files that are not disks imgpipe reads are refused,
// never read as raw, with what they are and the command to run.
func TestDetectRefusals(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, b []byte) string { return writeBytes(t, filepath.Join(dir, name), b) }
	sector := func(prefix string, n int) []byte {
		b := make([]byte, n)
		copy(b, prefix)
		return b
	}
	// a VHDX made by imgpipe, then its signature zeroed
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, 4<<20, scatteredPatterns(4<<20, 31))
	vhdx := filepath.Join(dir, "ok.vhdx")
	if _, err := ConvertFile(context.Background(), raw, vhdx, ConvertOptions{To: FormatVHDX, BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	vb, _ := os.ReadFile(vhdx)
	copy(vb, make([]byte, 8))
	zeroedVHDX := mk("zeroed.vhdx", vb)
	// ... and with the headers gone too, only the region tables left
	copy(vb[64<<10:], make([]byte, 4096))
	copy(vb[128<<10:], make([]byte, 4096))
	regionsOnly := mk("regions.vhdx", vb)
	// a fixed VHD with its cookie zeroed
	fixed := filepath.Join(dir, "ok.vhd")
	if _, err := ConvertFile(context.Background(), raw, fixed, ConvertOptions{To: FormatVHDFixed}); err != nil {
		t.Fatal(err)
	}
	fb, _ := os.ReadFile(fixed)
	copy(fb[len(fb)-512:], make([]byte, 8))
	zeroedVHD := mk("zeroed.vhd", fb)
	dyn := buildDynamicVHD(1<<20, 1<<16, nil, nil)
	copy(dyn[:8], make([]byte, 8))
	copy(dyn[len(dyn)-512:], make([]byte, 8))
	zeroedDyn := mk("zeroed-dyn.vhd", dyn)
	iso := make([]byte, 64<<10)
	copy(iso[0x8001:], "CD001")
	vdi := make([]byte, 4096)
	copy(vdi, "<<< Oracle VM VirtualBox Disk Image >>>\n")
	copy(vdi[0x40:], []byte{0x7f, 0x10, 0xda, 0xbe})
	tar := make([]byte, 10240)
	copy(tar, "disk.vmdk")
	copy(tar[257:], "ustar\x0000")

	cases := []struct {
		name, path string
		kind       error
		want       []string
	}{
		{"empty", mk("empty.img", nil), ErrCorrupt, []string{"empty (0 bytes)"}},
		{"one byte", mk("one.img", []byte{0x55}), ErrCorrupt, []string{"1 bytes, smaller than one 512-byte sector"}},
		{"511 bytes", mk("short.img", make([]byte, 511)), ErrCorrupt, []string{"511 bytes"}},
		{"text", mk("notes.txt", []byte(strings.Repeat("this is a build log line\n", 100))), ErrUnsupported, []string{"a text file, not a disk image"}},
		{"json manifest", mk("manifest.json", []byte("{\n  \"builds\": [\n    {\"name\": \"disk\", \"files\": [{\"name\": \"out/disk.qcow2\"}]}\n  ]\n}\n")), ErrUnsupported, []string{"text file"}},
		{"vmdk sparse", mk("a.vmdk", sector("KDMV\x01\x00\x00\x00", 4096)), ErrUnsupported, []string{"VMDK image", "qemu-img convert -f vmdk -O vhdx -o subformat=dynamic", "a.vmdk", "a.vhdx"}},
		{"vmdk descriptor", mk("desc.vmdk", []byte("# Disk DescriptorFile\nversion=1\nCID=fffffffe\ncreateType=\"monolithicFlat\"\nRW 8192 FLAT \"desc-flat.vmdk\" 0\n")), ErrUnsupported, []string{"VMDK descriptor", "qemu-img convert -f vmdk"}},
		{"vdi", mk("a.vdi", vdi), ErrUnsupported, []string{"VDI", "qemu-img convert -f vdi -O vhdx"}},
		{"qed", mk("a.qed", sector("QED\x00", 4096)), ErrUnsupported, []string{"QED", "qemu-img convert -f qed -O vhdx"}},
		{"qcow1", mk("a.qcow", sector("QFI\xfb\x00\x00\x00\x01", 4096)), ErrUnsupported, []string{"qcow version 1", "qemu-img convert -f qcow -O vhdx"}},
		{"iso", mk("install.iso", iso), ErrUnsupported, []string{"ISO 9660", "qemu-img convert -f raw -O vhdx"}},
		{"gzip", mk("disk.raw.gz", sector("\x1f\x8b\x08\x00", 4096)), ErrUnsupported, []string{"gzip-compressed", "gzip -dk"}},
		{"xz", mk("disk.img.xz", sector("\xfd7zXZ\x00", 4096)), ErrUnsupported, []string{"xz -dk"}},
		{"tar (ova)", mk("appliance.ova", tar), ErrUnsupported, []string{"tar archive", "tar -xf"}},
		{"luks", mk("enc.img", sector("LUKS\xba\xbe\x00\x01", 4096)), ErrUnsupported, []string{"LUKS", "driver=luks"}},
		{"vhdx with zeroed signature", zeroedVHDX, ErrCorrupt, []string{"VHDX signature is missing", "do not upload it as raw"}},
		{"vhdx with only region tables", regionsOnly, ErrCorrupt, []string{"damaged VHDX"}},
		{"fixed vhd with zeroed cookie", zeroedVHD, ErrCorrupt, []string{"damaged VHD"}},
		{"dynamic vhd with zeroed cookies", zeroedDyn, ErrCorrupt, []string{"damaged VHD"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := Open(c.path)
			if err == nil {
				img.Close()
				t.Fatalf("opened as %s", img.Format())
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, c.kind) {
				t.Fatalf("error %v: want a FormatError that is %v", err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("error %q does not say %q", err, w)
				}
			}
			if _, err := ConvertFile(context.Background(), c.path, c.path+".out.vhd", ConvertOptions{To: FormatVHDFixed}); err == nil {
				t.Fatal("converted")
			}
			if _, err := os.Stat(c.path + ".out.vhd"); !os.IsNotExist(err) {
				t.Fatalf("an output file was left: %v", err)
			}
		})
	}
}

// TestDetectQemuMadeForeignFormats: the formats as qemu-img writes them.
func TestDetectQemuMadeForeignFormats(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	for _, c := range []struct{ name, fmt, opts, want string }{
		{"vmdk-sparse", "vmdk", "", "VMDK image"},
		{"vmdk-stream", "vmdk", "subformat=streamOptimized", "VMDK image"},
		{"vmdk-flat", "vmdk", "subformat=monolithicFlat", "VMDK descriptor"},
		{"vdi", "vdi", "", "VDI"},
		{"qed", "qed", "", "QED"},
		{"parallels", "parallels", "", "Parallels"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := filepath.Join(dir, c.name+"."+c.fmt)
			args := []string{"create", "-q", "-f", c.fmt}
			if c.opts != "" {
				args = append(args, "-o", c.opts)
			}
			run(t, "qemu-img", append(args, p, "8M")...)
			_, err := Open(p)
			if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), "qemu-img convert -f "+c.fmt) {
				t.Fatalf("error %v: want %q and the qemu-img command", err, c.want)
			}
			// and the command it gives really works
			var fe *FormatError
			if !errors.As(err, &fe) || fe.Command() == "" {
				t.Fatalf("no command in %v", err)
			}
			cmd := exec.Command("sh", "-c", fe.Command())
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", fe.Command(), err, out)
			}
			img := mustOpen(t, strings.TrimSuffix(p, filepath.Ext(p))+".vhdx")
			if img.Format() != FormatVHDX || img.Size() != 8<<20 {
				t.Fatalf("converted image: %s %d", img.Format(), img.Size())
			}
		})
	}
}

// TestDetectRawWarnings: a raw file is accepted; without a partition table
// (or with a ragged size) it carries a warning for the CLI to show.
func TestDetectRawWarnings(t *testing.T) {
	dir := t.TempDir()
	mbr := make([]byte, 1<<20)
	mbr[510], mbr[511] = 0x55, 0xaa
	gpt := make([]byte, 1<<20)
	copy(gpt[512:], "EFI PART")
	blank := make([]byte, 1<<20)
	ragged := make([]byte, 1<<20+100)
	ragged[510], ragged[511] = 0x55, 0xaa
	line := make([]byte, 1<<20) // one printable byte, no lines: not text
	for i := range line {
		line[i] = 'B'
	}
	for _, c := range []struct {
		name string
		b    []byte
		want []string
	}{
		{"mbr", mbr, nil},
		{"gpt", gpt, nil},
		{"blank", blank, []string{"no MBR or GPT"}},
		{"ragged", ragged, []string{"not a whole number of 512-byte sectors"}},
		{"one byte value", line, []string{"no MBR or GPT"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			img := mustOpen(t, writeBytes(t, filepath.Join(dir, c.name+".img"), c.b))
			if img.Format() != FormatRaw {
				t.Fatalf("format %s", img.Format())
			}
			w := img.(Describer).Info().Warnings
			if len(w) != len(c.want) {
				t.Fatalf("warnings %q, want %q", w, c.want)
			}
			for i := range w {
				if !strings.Contains(w[i], c.want[i]) {
					t.Fatalf("warning %q, want %q", w[i], c.want[i])
				}
			}
		})
	}
}

// TestDetectFormat: DetectFormat names the formats, refused ones included.
func TestDetectFormatNames(t *testing.T) {
	dir := t.TempDir()
	q := writeBytes(t, filepath.Join(dir, "x.qcow2"), buildQcow2(t, qcowSpec{size: 1 << 20, clusterBits: 16}))
	v := writeBytes(t, filepath.Join(dir, "x.vmdk"), append([]byte("KDMV"), make([]byte, 1020)...))
	for path, want := range map[string]Format{q: FormatQcow2, v: formatVMDK} {
		if f, err := DetectFormat(path); err != nil || f != want {
			t.Fatalf("DetectFormat(%s) = %s, %v; want %s", filepath.Base(path), f, err, want)
		}
	}
	if _, err := DetectFormat(writeBytes(t, filepath.Join(dir, "e"), nil)); err == nil {
		t.Fatal("an empty file has a format")
	}
}
