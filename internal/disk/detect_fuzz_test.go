package disk

import "testing"

// FuzzDetect feeds arbitrary bytes to format detection and, when they are
// accepted, to the opened image: no panic, and a refusal is always a
// *FormatError or a plain error, never a raw image of a refused kind.
func FuzzDetect(f *testing.F) {
	for _, s := range []string{
		"", "x", "vhdxfile", "QFI\xfb\x00\x00\x00\x03", "QFI\xfb\x00\x00\x00\x01", "QED\x00", "KDMV", "COWD",
		"# Disk DescriptorFile\n", "conectix", "\x1f\x8b\x08", "\xfd7zXZ\x00", "LUKS\xba\xbe", "hello\nworld\n",
		"WithoutFreeSpace", "Bochs Virtual HD Image",
	} {
		b := make([]byte, 1024)
		copy(b, s)
		f.Add([]byte(s))
		f.Add(b)
	}
	mbr := make([]byte, 4096)
	mbr[510], mbr[511] = 0x55, 0xaa
	f.Add(mbr)
	f.Fuzz(func(t *testing.T, b []byte) {
		m := &patched{base: b, size: int64(len(b))}
		format, err := detect(m, m.size)
		img, oerr := openBacking(m, m.size)
		if err != nil && oerr == nil {
			t.Fatalf("detect refused (%v) but open accepted %s", err, img.Format())
		}
		if oerr != nil {
			return
		}
		defer img.Close()
		if format == FormatRaw && img.Format() != FormatRaw {
			t.Fatalf("detected raw, opened %s", img.Format())
		}
		exerciseImage(t, img)
	})
}
