package drift

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/klauspost/compress/zstd"

	"imgpipe/internal/atomicfile"
)

// The baseline file format (version 1):
//
//	magic   "IMGPIPE-BASELINE" (16 bytes), version byte (1)
//	zstd stream of:
//	  uvarint n, n bytes of JSON: the Baseline without its files
//	  uvarint count of file records, then per record, in path order:
//	    uvarint shared   bytes shared with the previous path
//	    uvarint len, len bytes: the rest of the path
//	    byte    type
//	    byte    flags: 1 hash, 2 link target, 4 error
//	    uvarint mode, uid, gid, size, nlink, inode, rdev
//	    varint  mtime (ns), varint ctime-mtime (ns)
//	    [32 bytes hash] [uvarint len + link target] [uvarint len + error]
//	  the 8 bytes "END\x00\x00\x00\x00\x00"
//
// Paths are raw bytes (any name survives); front coding of sorted paths and
// zstd keep a 100k-file baseline at a few megabytes, most of it the hashes.
const (
	baselineMagic   = "IMGPIPE-BASELINE"
	baselineVersion = 1
	trailer         = "END\x00\x00\x00\x00\x00"

	flagHash = 1
	flagLink = 2
	flagErr  = 4

	maxNameLen = 64 << 10
	maxMetaLen = 256 << 20
)

// WriteTo writes the baseline in its binary format.
func (b *Baseline) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	if _, err := cw.Write(append([]byte(baselineMagic), baselineVersion)); err != nil {
		return cw.n, err
	}
	zw, err := zstd.NewWriter(cw, zstd.WithEncoderLevel(zstd.SpeedDefault), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return cw.n, err
	}
	bw := bufio.NewWriterSize(zw, 256<<10)
	meta, err := json.Marshal(b)
	if err != nil {
		return cw.n, err
	}
	var tmp [binary.MaxVarintLen64]byte
	uv := func(v uint64) { bw.Write(tmp[:binary.PutUvarint(tmp[:], v)]) }
	sv := func(v int64) { bw.Write(tmp[:binary.PutVarint(tmp[:], v)]) }
	uv(uint64(len(meta)))
	bw.Write(meta)
	uv(uint64(len(b.Files)))
	prev := ""
	for i := range b.Files {
		e := &b.Files[i]
		p := string(e.Path)
		if i > 0 && p <= prev {
			return cw.n, fmt.Errorf("baseline files not sorted or not unique at %q", e.Path)
		}
		shared := commonPrefix(prev, p)
		uv(uint64(shared))
		uv(uint64(len(p) - shared))
		bw.WriteString(p[shared:])
		var flags byte
		if e.HasHash {
			flags |= flagHash
		}
		if e.Link != "" {
			flags |= flagLink
		}
		if e.Err != "" {
			flags |= flagErr
		}
		bw.WriteByte(byte(e.Type))
		bw.WriteByte(flags)
		uv(uint64(e.Mode))
		uv(uint64(e.UID))
		uv(uint64(e.GID))
		uv(uint64(e.Size))
		uv(uint64(e.Nlink))
		uv(e.Ino)
		uv(e.Rdev)
		sv(e.Mtime)
		sv(e.Ctime - e.Mtime)
		if e.HasHash {
			bw.Write(e.Hash[:])
		}
		if e.Link != "" {
			uv(uint64(len(e.Link)))
			bw.WriteString(e.Link)
		}
		if e.Err != "" {
			uv(uint64(len(e.Err)))
			bw.WriteString(e.Err)
		}
		prev = p
	}
	bw.WriteString(trailer)
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	if err := zw.Close(); err != nil {
		return cw.n, err
	}
	return cw.n, nil
}

// MarshalBinary returns the baseline in its binary format.
func (b *Baseline) MarshalBinary() ([]byte, error) {
	var buf bytes.Buffer
	_, err := b.WriteTo(&buf)
	return buf.Bytes(), err
}

// UnmarshalBinary decodes a baseline written by MarshalBinary or WriteTo.
func (b *Baseline) UnmarshalBinary(data []byte) error {
	nb, err := ReadBaseline(bytes.NewReader(data))
	if err != nil {
		return err
	}
	*b = *nb
	return nil
}

var errFormat = errors.New("not a valid imgpipe baseline")

// ReadBaseline decodes a baseline. Malformed input gives an error, never a
// panic, and memory use is bounded by the size of the real content.
func ReadBaseline(r io.Reader) (*Baseline, error) {
	var size int64
	switch v := r.(type) {
	case interface{ Len() int }:
		size = int64(v.Len())
	case *os.File:
		if fi, err := v.Stat(); err == nil {
			size = fi.Size()
		}
	}
	return readBaseline(r, size)
}

// readBaseline decodes a baseline; size is the encoded size when known.
// The file list is allocated at once for the claimed number of entries, but
// never beyond what size can plausibly hold (no compressed entry is under
// two bytes), so absurd counts in small inputs allocate little.
func readBaseline(r io.Reader, size int64) (*Baseline, error) {
	hdr := make([]byte, len(baselineMagic)+1)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	if string(hdr[:len(baselineMagic)]) != baselineMagic {
		return nil, fmt.Errorf("%w: bad magic", errFormat)
	}
	if hdr[len(baselineMagic)] != baselineVersion {
		return nil, fmt.Errorf("baseline format version %d is not supported by this imgpipe (it reads %d): upgrade imgpipe", hdr[len(baselineMagic)], baselineVersion)
	}
	zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(1<<30), zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	d := &decoder{r: bufio.NewReaderSize(zr, 64<<10), maxPrealloc: uint64(max(size/2, 1<<12))}
	b, err := d.baseline()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errFormat, err)
	}
	return b, nil
}

type decoder struct {
	r           *bufio.Reader
	maxPrealloc uint64
}

func (d *decoder) uv() (uint64, error) { return binary.ReadUvarint(d.r) }

func (d *decoder) u32() (uint32, error) {
	v, err := d.uv()
	if err == nil && v > 0xffffffff {
		err = errors.New("value out of range")
	}
	return uint32(v), err
}

// bytesN reads n bytes, growing the buffer as data arrives so a huge length
// in a short input allocates nothing big.
func (d *decoder) bytesN(n uint64, limit uint64) ([]byte, error) {
	if n > limit {
		return nil, fmt.Errorf("length %d over the limit %d", n, limit)
	}
	if n <= maxNameLen {
		b := make([]byte, n)
		if _, err := io.ReadFull(d.r, b); err != nil {
			return nil, fmt.Errorf("truncated: %v", err)
		}
		return b, nil
	}
	var buf bytes.Buffer
	m, err := io.CopyN(&buf, d.r, int64(n))
	if err != nil || uint64(m) != n {
		return nil, fmt.Errorf("truncated: %v", err)
	}
	return buf.Bytes(), nil
}

func (d *decoder) baseline() (*Baseline, error) {
	n, err := d.uv()
	if err != nil {
		return nil, err
	}
	meta, err := d.bytesN(n, maxMetaLen)
	if err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	b := &Baseline{}
	if err := json.Unmarshal(meta, b); err != nil {
		return nil, fmt.Errorf("header: %w", err)
	}
	if _, err := newHasher(b.Hash); err != nil {
		return nil, err
	}
	count, err := d.uv()
	if err != nil {
		return nil, err
	}
	b.Files = make([]Entry, 0, min(count, max(d.maxPrealloc, 1<<12)))
	var prev []byte
	for i := uint64(0); i < count; i++ {
		e, p, err := d.entry(prev)
		if err != nil {
			return nil, fmt.Errorf("file record %d: %w", i, err)
		}
		b.Files = append(b.Files, e)
		prev = p
	}
	var t [len(trailer)]byte
	if _, err := io.ReadFull(d.r, t[:]); err != nil || string(t[:]) != trailer {
		return nil, errors.New("missing end marker (truncated file?)")
	}
	if _, err := d.r.ReadByte(); err != io.EOF {
		return nil, errors.New("data after the end marker")
	}
	return b, nil
}

func (d *decoder) entry(prev []byte) (Entry, []byte, error) {
	var e Entry
	shared, err := d.uv()
	if err != nil {
		return e, nil, err
	}
	if shared > uint64(len(prev)) {
		return e, nil, errors.New("bad path prefix length")
	}
	n, err := d.uv()
	if err != nil {
		return e, nil, err
	}
	if shared+n > maxNameLen || n == 0 {
		return e, nil, errors.New("bad path length")
	}
	rest, err := d.bytesN(n, maxNameLen)
	if err != nil {
		return e, nil, err
	}
	p := make([]byte, 0, shared+n)
	p = append(append(p, prev[:shared]...), rest...)
	if bytes.IndexByte(p, 0) >= 0 {
		return e, nil, errors.New("NUL byte in path")
	}
	if prev != nil && bytes.Compare(p, prev) <= 0 {
		return e, nil, errors.New("paths not in order")
	}
	e.Path = Name(p)
	typ, err := d.r.ReadByte()
	if err != nil {
		return e, nil, err
	}
	if FileType(typ) >= typeMax {
		return e, nil, fmt.Errorf("unknown file type %d", typ)
	}
	e.Type = FileType(typ)
	flags, err := d.r.ReadByte()
	if err != nil {
		return e, nil, err
	}
	if flags&^(flagHash|flagLink|flagErr) != 0 {
		return e, nil, fmt.Errorf("unknown flags %#x", flags)
	}
	for _, dst := range []*uint32{&e.Mode, &e.UID, &e.GID} {
		if *dst, err = d.u32(); err != nil {
			return e, nil, err
		}
	}
	size, err := d.uv()
	if err != nil {
		return e, nil, err
	}
	if size > 1<<62 {
		return e, nil, errors.New("size out of range")
	}
	e.Size = int64(size)
	if e.Nlink, err = d.u32(); err != nil {
		return e, nil, err
	}
	if e.Ino, err = d.uv(); err != nil {
		return e, nil, err
	}
	if e.Rdev, err = d.uv(); err != nil {
		return e, nil, err
	}
	if e.Mtime, err = binary.ReadVarint(d.r); err != nil {
		return e, nil, err
	}
	dc, err := binary.ReadVarint(d.r)
	if err != nil {
		return e, nil, err
	}
	e.Ctime = e.Mtime + dc
	if flags&flagHash != 0 {
		if _, err := io.ReadFull(d.r, e.Hash[:]); err != nil {
			return e, nil, err
		}
		e.HasHash = true
	}
	if flags&flagLink != 0 {
		n, err := d.uv()
		if err != nil {
			return e, nil, err
		}
		l, err := d.bytesN(n, maxNameLen)
		if err != nil || n == 0 {
			return e, nil, errors.New("bad link target")
		}
		e.Link = string(l)
	}
	if flags&flagErr != 0 {
		n, err := d.uv()
		if err != nil {
			return e, nil, err
		}
		l, err := d.bytesN(n, maxNameLen)
		if err != nil || n == 0 {
			return e, nil, errors.New("bad error text")
		}
		e.Err = string(l)
	}
	return e, p, nil
}

func commonPrefix(a, b string) int {
	n := min(len(a), len(b))
	i := 0
	for i < n && a[i] == b[i] {
		i++
	}
	return i
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// WriteBaselineFile writes b to path atomically (creating its directory).
func WriteBaselineFile(path string, b *Baseline) (int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return 0, fmt.Errorf("create %s: %w", filepath.Dir(path), err)
	}
	f, err := atomicfile.Create(path, 0o644)
	if err != nil {
		return 0, err
	}
	defer f.Abort()
	bw := bufio.NewWriterSize(f, 1<<20)
	n, err := b.WriteTo(bw)
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return n, fmt.Errorf("write baseline %s: %w", path, err)
	}
	return n, f.Commit()
}

// ReadBaselineFile reads a baseline file.
func ReadBaselineFile(path string) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, fmt.Errorf("baseline %s not found: capture one with `imgpipe baseline capture` or give --baseline: %w", path, err)
		}
		return nil, err
	}
	defer f.Close()
	var size int64
	if fi, err := f.Stat(); err == nil {
		size = fi.Size()
	}
	b, err := readBaseline(bufio.NewReaderSize(f, 1<<20), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}
