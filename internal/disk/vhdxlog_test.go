package disk

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// logWrite is one descriptor of a crafted log entry: a 4 KiB data write,
// or (data == nil) a zeroing of zeroLen bytes.
type logWrite struct {
	fileOff int64
	data    []byte
	zeroLen int64
}

// craftLogEntry builds a log entry as [MS-VHDX] 2.3.1 lays it out.
func craftLogEntry(seq uint64, tail uint32, logGUID guid, flushed, last uint64, writes []logWrite) []byte {
	descSectors := (64 + 32*len(writes) + 4095) / 4096
	dataSectors := 0
	for _, w := range writes {
		if w.data != nil {
			dataSectors++
		}
	}
	b := make([]byte, (descSectors+dataSectors)*4096)
	copy(b, "loge")
	binary.LittleEndian.PutUint32(b[8:], uint32(len(b)))
	binary.LittleEndian.PutUint32(b[12:], tail)
	binary.LittleEndian.PutUint64(b[16:], seq)
	binary.LittleEndian.PutUint32(b[24:], uint32(len(writes)))
	copy(b[32:48], logGUID[:])
	binary.LittleEndian.PutUint64(b[48:], flushed)
	binary.LittleEndian.PutUint64(b[56:], last)
	di := 0
	for i, w := range writes {
		d := b[64+32*i:]
		if w.data == nil {
			copy(d, "zero")
			binary.LittleEndian.PutUint64(d[8:], uint64(w.zeroLen))
		} else {
			copy(d, "desc")
			copy(d[4:8], w.data[4092:])
			copy(d[8:16], w.data[:8])
			s := b[(descSectors+di)*4096:]
			di++
			copy(s, "data")
			binary.LittleEndian.PutUint32(s[4:], uint32(seq>>32))
			copy(s[8:4092], w.data[8:4092])
			binary.LittleEndian.PutUint32(s[4092:], uint32(seq))
		}
		binary.LittleEndian.PutUint64(d[16:], uint64(w.fileOff))
		binary.LittleEndian.PutUint64(d[24:], seq)
	}
	binary.LittleEndian.PutUint32(b[4:], crc32cZeroed(b, 4))
	return b
}

// dirtyVHDX writes log entries (back to back from the start of the log)
// into the VHDX at path and marks the log as needing replay in the
// current header.
func dirtyVHDX(t testing.TB, path string, logGUID guid, entries ...[]byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var cur *vhdxHeader
	curOff := int64(0)
	for _, off := range []int64{64 << 10, 128 << 10} {
		b := make([]byte, 4096)
		if _, err := f.ReadAt(b, off); err != nil {
			t.Fatal(err)
		}
		if h, err := parseVHDXHeader(b); err == nil && (cur == nil || h.Sequence > cur.Sequence) {
			cur, curOff = h, off
		}
	}
	pos := int64(cur.LogOffset)
	for _, e := range entries {
		if _, err := f.WriteAt(e, pos); err != nil {
			t.Fatal(err)
		}
		pos += int64(len(e))
	}
	cur.LogGUID = logGUID
	if _, err := f.WriteAt(cur.marshal(), curOff); err != nil {
		t.Fatal(err)
	}
}

func randomSector(seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	b := make([]byte, 4096)
	for i := range b {
		b[i] = byte(r.IntN(255) + 1)
	}
	return b
}

func TestVHDXLogReplay(t *testing.T) {
	dir := t.TempDir()
	size := int64(oracleSize)
	pats := scatteredPatterns(size, 5)
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, size, pats)
	clean := filepath.Join(dir, "clean.vhdx")
	if _, err := ConvertFile(context.Background(), raw, clean, ConvertOptions{To: FormatVHDX, BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	img := mustOpen(t, clean).(*vhdxImage)
	fileSize := img.realSize
	blockOff := func(b int64) int64 { return int64(img.bat[img.batIndex(b)]>>20) << 20 }
	fo2 := blockOff(2) // block 2 holds the pattern at 2 MiB + 3584
	if fo2 == 0 || blockOff(30) != 0 {
		t.Fatalf("fixture layout changed: block 2 at %d, block 30 at %d", fo2, blockOff(30))
	}
	batSector := make([]byte, 4096)
	if err := img.read(batSector, vhdxBATOff); err != nil {
		t.Fatal(err)
	}
	binary.LittleEndian.PutUint64(batSector[8*img.batIndex(30):], uint64(fileSize)|batFully)
	newBlock := randomSector(1)
	payload := randomSector(2)
	var lg guid
	copy(lg[:], "imgpipe-log-test")

	// Entry 1 (tail = itself): allocate block 30 past the end of the file
	// and write its first sector. Entry 2 (tail = entry 1): overwrite a
	// sector of block 2 and zero the next one.
	e1 := craftLogEntry(10, 0, lg, uint64(fileSize), uint64(fileSize+1<<20), []logWrite{
		{fileOff: vhdxBATOff, data: batSector},
		{fileOff: fileSize, data: newBlock},
	})
	e2 := craftLogEntry(11, 0, lg, uint64(fileSize), uint64(fileSize+1<<20), []logWrite{
		{fileOff: fo2 + 4096, data: payload},
		{fileOff: fo2 + 8192, zeroLen: 4096},
	})
	want1 := expected(size, pats)
	copy(want1[30<<20:], newBlock)
	want2 := append([]byte(nil), want1...)
	copy(want2[2<<20+4096:], payload)
	clear(want2[2<<20+8192 : 2<<20+12288])

	corrupt := func(e []byte) []byte { c := append([]byte(nil), e...); c[len(c)-100] ^= 1; return c }
	otherGUID := lg
	otherGUID[0] ^= 1
	cases := []struct {
		name    string
		entries [][]byte
		guid    guid
		want    []byte
		errText string
	}{
		{"two entries", [][]byte{e1, e2}, lg, want2, ""},
		{"torn last entry replays the first", [][]byte{e1, corrupt(e2)}, lg, want1, ""},
		{"no valid entry", [][]byte{corrupt(e1)}, lg, nil, "qemu-img check -r all"},
		{"log guid mismatch", [][]byte{e1, e2}, otherGUID, nil, "Hyper-V"},
		{"truncated file", [][]byte{craftLogEntry(3, 0, lg, uint64(fileSize+5<<20), uint64(fileSize+5<<20), nil)}, lg, nil, "truncated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-")+".vhdx")
			b, _ := os.ReadFile(clean)
			if err := os.WriteFile(path, b, 0o644); err != nil {
				t.Fatal(err)
			}
			dirtyVHDX(t, path, c.guid, c.entries...)
			before := fileHash(t, path)
			img, err := Open(path)
			if c.errText != "" {
				if err == nil {
					img.Close()
					t.Fatalf("opened a VHDX whose log cannot be replayed")
				}
				if !strings.Contains(err.Error(), c.errText) || !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %q does not mention %q or is not ErrCorrupt", err, c.errText)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer img.Close()
			if !img.(Describer).Info().LogReplayed {
				t.Fatal("Info does not say the log was replayed")
			}
			equalBytes(t, "replayed content", readAll(t, img), c.want)
			checkExtents(t, img, c.want)
			if fileHash(t, path) != before {
				t.Fatal("opening the VHDX modified the file")
			}
			// Oracle: qemu-img replays the same log on a copy.
			if _, err := exec.LookPath("qemu-img"); err == nil {
				cp := path + ".qemu"
				if err := os.WriteFile(cp, b, 0o644); err != nil {
					t.Fatal(err)
				}
				dirtyVHDX(t, cp, c.guid, c.entries...)
				_, _ = exec.Command("qemu-img", "check", "-r", "all", "-f", "vhdx", cp).CombinedOutput()
				// qemu 7.2 replays but skips the last step of [MS-VHDX] 2.3.3
				// (extend the file to the head entry's LastFileOffset); do it.
				if st, err := os.Stat(cp); err == nil && st.Size() < fileSize+1<<20 {
					if err := os.Truncate(cp, fileSize+1<<20); err != nil {
						t.Fatal(err)
					}
				}
				back := cp + ".raw"
				run(t, "qemu-img", "convert", "-f", "vhdx", "-O", "raw", cp, back)
				got, _ := os.ReadFile(back)
				equalBytes(t, "qemu-img's replay", got, c.want)
			}
		})
	}
}

// TestVHDXLogCycle makes sure the log scan ends on a log whose entries all
// point at each other as tails (a cycle) with wrapping sequence numbers.
func TestVHDXLogCycle(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, 4<<20, scatteredPatterns(4<<20, 6))
	path := filepath.Join(dir, "cycle.vhdx")
	if _, err := ConvertFile(context.Background(), raw, path, ConvertOptions{To: FormatVHDX, BlockSize: 1 << 20}); err != nil {
		t.Fatal(err)
	}
	var lg guid
	copy(lg[:], "cycle-cycle-cycl")
	var entries [][]byte
	// 256 one-sector entries fill the 1 MiB log; each names the next as its tail.
	for i := 0; i < 256; i++ {
		entries = append(entries, craftLogEntry(uint64(1000+i%3), uint32(((i+1)%256)*4096), lg, 0, 0, nil))
	}
	dirtyVHDX(t, path, lg, entries...)
	img, err := Open(path)
	if err == nil {
		img.Close()
		t.Fatal("a log with no valid sequence was accepted")
	}
	if !bytes.Contains([]byte(err.Error()), []byte("no valid log sequence")) {
		t.Fatalf("unexpected error: %v", err)
	}
}
