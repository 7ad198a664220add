package disk

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"sync"
	"time"
)

// VHDX ([MS-VHDX] v1.0). All integers are little-endian, GUIDs are stored
// with their first three fields little-endian. Layout of the first MiB:
// file type identifier at 0, headers at 64 KiB and 128 KiB, region tables at
// 192 KiB and 256 KiB. Every header, region table and log entry carries a
// CRC-32C (Castagnoli) computed with its own checksum field set to zero.

const (
	vhdxSignature    = "vhdxfile"
	vhdxHeaderSize   = 4096
	vhdxRegionSize   = 64 << 10
	vhdxMetaTableLen = 64 << 10
	maxLogLength     = 128 << 20 // larger logs are refused rather than replayed in memory

	// payload block states (low 3 bits of a BAT entry)
	batNotPresent  = 0
	batUndefined   = 1
	batZero        = 2
	batUnmapped    = 3
	batUnmappedOld = 5 // pre-release spelling, read as unmapped
	batFully       = 6
	batPartially   = 7
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// crc32cZeroed is the CRC-32C of b computed as if b[at:at+4] were zero.
func crc32cZeroed(b []byte, at int) uint32 {
	var z [4]byte
	c := crc32.Update(0, castagnoli, b[:at])
	c = crc32.Update(c, castagnoli, z[:])
	return crc32.Update(c, castagnoli, b[at+4:])
}

type guid [16]byte

// parseGUID turns the canonical text form into the on-disk byte order.
func parseGUID(s string) guid {
	var g guid
	h := make([]byte, 0, 32)
	for i := 0; i < len(s); i++ {
		if s[i] != '-' {
			h = append(h, s[i])
		}
	}
	b, err := hex.DecodeString(string(h))
	if err != nil || len(b) != 16 {
		panic("bad GUID literal " + s)
	}
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

// canonical returns the GUID's bytes in text (big-endian) order.
func (g guid) canonical() [16]byte {
	var b [16]byte
	b[0], b[1], b[2], b[3] = g[3], g[2], g[1], g[0]
	b[4], b[5] = g[5], g[4]
	b[6], b[7] = g[7], g[6]
	copy(b[8:], g[8:])
	return b
}

func (g guid) String() string { return formatUUID(g.canonical()) }

var (
	guidBAT          = parseGUID("2DC27766-F623-4200-9D64-115E9BFD4A08")
	guidMetadata     = parseGUID("8B7CA206-4790-4B9A-B8FE-575F050F886E")
	guidFileParams   = parseGUID("CAA16737-FA36-4D43-B3B6-33F0AA44E76B")
	guidVirtualSize  = parseGUID("2FA54224-CD1B-4876-B211-5DBED83BF4B8")
	guidPage83       = parseGUID("BECA12AB-B2E6-4523-93EF-C309E000C746")
	guidLogicalSect  = parseGUID("8141BF1D-A96F-4709-BA47-F233A8FAAB5F")
	guidPhysicalSect = parseGUID("CDA348C7-445D-4471-9CC9-E9885251C556")
	guidParentLoc    = parseGUID("A8D35F2D-B30B-454D-ABF7-D3D84834AB0C")
)

// vhdxHeader is one of the two 4 KiB headers.
type vhdxHeader struct {
	Sequence      uint64
	FileWriteGUID guid
	DataWriteGUID guid
	LogGUID       guid
	LogVersion    uint16
	Version       uint16
	LogLength     uint32
	LogOffset     uint64
}

func parseVHDXHeader(b []byte) (*vhdxHeader, error) {
	if len(b) < vhdxHeaderSize || string(b[:4]) != "head" {
		return nil, corruptf("VHDX header signature missing")
	}
	b = b[:vhdxHeaderSize]
	if got, want := crc32cZeroed(b, 4), binary.LittleEndian.Uint32(b[4:]); got != want {
		return nil, corruptf("VHDX header CRC-32C is %#x, stored %#x", got, want)
	}
	h := &vhdxHeader{
		Sequence:   binary.LittleEndian.Uint64(b[8:]),
		LogVersion: binary.LittleEndian.Uint16(b[64:]),
		Version:    binary.LittleEndian.Uint16(b[66:]),
		LogLength:  binary.LittleEndian.Uint32(b[68:]),
		LogOffset:  binary.LittleEndian.Uint64(b[72:]),
	}
	copy(h.FileWriteGUID[:], b[16:32])
	copy(h.DataWriteGUID[:], b[32:48])
	copy(h.LogGUID[:], b[48:64])
	if h.Version != 1 {
		return nil, fmt.Errorf("%w: VHDX header version %d (imgpipe reads version 1)", ErrUnsupported, h.Version)
	}
	return h, nil
}

func (h *vhdxHeader) marshal() []byte {
	b := make([]byte, vhdxHeaderSize)
	copy(b, "head")
	binary.LittleEndian.PutUint64(b[8:], h.Sequence)
	copy(b[16:], h.FileWriteGUID[:])
	copy(b[32:], h.DataWriteGUID[:])
	copy(b[48:], h.LogGUID[:])
	binary.LittleEndian.PutUint16(b[64:], h.LogVersion)
	binary.LittleEndian.PutUint16(b[66:], h.Version)
	binary.LittleEndian.PutUint32(b[68:], h.LogLength)
	binary.LittleEndian.PutUint64(b[72:], h.LogOffset)
	binary.LittleEndian.PutUint32(b[4:], crc32cZeroed(b, 4))
	return b
}

type vhdxRegion struct {
	GUID     guid
	Offset   uint64
	Length   uint32
	Required bool
}

func parseRegionTable(b []byte) ([]vhdxRegion, error) {
	if len(b) < vhdxRegionSize || string(b[:4]) != "regi" {
		return nil, corruptf("VHDX region table signature missing")
	}
	b = b[:vhdxRegionSize]
	if got, want := crc32cZeroed(b, 4), binary.LittleEndian.Uint32(b[4:]); got != want {
		return nil, corruptf("VHDX region table CRC-32C is %#x, stored %#x", got, want)
	}
	n := binary.LittleEndian.Uint32(b[8:])
	if n > 2047 {
		return nil, corruptf("VHDX region table claims %d entries (at most 2047)", n)
	}
	out := make([]vhdxRegion, n)
	for i := range out {
		e := b[16+32*i:]
		copy(out[i].GUID[:], e[:16])
		out[i].Offset = binary.LittleEndian.Uint64(e[16:])
		out[i].Length = binary.LittleEndian.Uint32(e[24:])
		out[i].Required = binary.LittleEndian.Uint32(e[28:])&1 != 0
	}
	return out, nil
}

// vhdxImage reads dynamic and fixed VHDX files.
type vhdxImage struct {
	f           backing
	realSize    int64 // bytes in the file
	logicalSize int64 // after log replay (the log may extend the file)
	ov          *logOverlay
	hdr         *vhdxHeader

	size           int64
	blockSize      int64
	logicalSector  int64
	physicalSector int64
	leaveAllocated bool
	diskID         guid
	chunkRatio     int64
	blocks         int64
	bat            []uint64
	once           sync.Once
}

func openVHDX(ctx context.Context, f backing, fileSize int64) (Image, error) {
	v := &vhdxImage{f: f, realSize: fileSize, logicalSize: fileSize}
	if fileSize < 1<<20 {
		return nil, corruptf("VHDX file is %d bytes, shorter than its 1 MiB header section", fileSize)
	}
	// Headers: the current one is the valid one with the higher sequence number.
	var hdrs [2]*vhdxHeader
	var herr [2]error
	for i, off := range []int64{64 << 10, 128 << 10} {
		b := make([]byte, vhdxHeaderSize)
		if err := readFull(f, b, off); err != nil {
			return nil, fmt.Errorf("read VHDX header %d: %w", i+1, err)
		}
		hdrs[i], herr[i] = parseVHDXHeader(b)
	}
	switch {
	case hdrs[0] == nil && hdrs[1] == nil:
		return nil, fmt.Errorf("%w: both VHDX headers are invalid (%v; %v): the file is damaged; restore it from its source", ErrCorrupt, herr[0], herr[1])
	case hdrs[1] == nil || (hdrs[0] != nil && hdrs[0].Sequence >= hdrs[1].Sequence):
		v.hdr = hdrs[0]
	default:
		v.hdr = hdrs[1]
	}
	if v.hdr.LogGUID != (guid{}) {
		if err := v.replayLog(); err != nil {
			return nil, err
		}
	}
	if err := v.readRegions(ctx); err != nil {
		return nil, err
	}
	return v, nil
}

// read reads file bytes as they are after log replay: past the end of the
// real file (but inside the replayed size) they read as zeros.
func (v *vhdxImage) read(p []byte, off int64) error {
	if off < 0 || off+int64(len(p)) > v.logicalSize || off+int64(len(p)) < off {
		return corruptf("read of %d bytes at %d is outside the %d-byte VHDX file", len(p), off, v.logicalSize)
	}
	n, err := v.f.ReadAt(p, off)
	if n < len(p) {
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read VHDX: %w", err)
		}
		zero(p[n:])
	}
	if v.ov != nil {
		v.ov.apply(p, off)
	}
	return nil
}

func (v *vhdxImage) readRegions(ctx context.Context) error {
	var regions []vhdxRegion
	var errs []error
	for _, off := range []int64{192 << 10, 256 << 10} {
		b := make([]byte, vhdxRegionSize)
		if err := v.read(b, off); err != nil {
			return err
		}
		r, err := parseRegionTable(b)
		if err == nil {
			regions = r
			break
		}
		errs = append(errs, err)
	}
	if regions == nil {
		return fmt.Errorf("both VHDX region tables are invalid: %w", errors.Join(errs...))
	}
	// The structures of the file, which no payload block may overlap
	// (qemu's block/vhdx.c registers the same regions and refuses overlaps).
	spans := []span{{start: 0, end: 1 << 20, kind: spanHeader}}
	if v.hdr.LogLength > 0 && v.hdr.LogOffset < maxVirtualSize*2 {
		spans = append(spans, span{start: int64(v.hdr.LogOffset), end: int64(v.hdr.LogOffset) + int64(v.hdr.LogLength), kind: spanLog})
	}
	var bat, meta *vhdxRegion
	for i := range regions {
		r := &regions[i]
		if r.Length > 0 && r.Offset < maxVirtualSize*2 {
			kind := spanTable
			if r.GUID != guidBAT {
				kind = spanMetadata
			}
			spans = append(spans, span{start: int64(r.Offset), end: int64(r.Offset) + int64(r.Length), kind: kind})
		}
		switch r.GUID {
		case guidBAT:
			bat = r
		case guidMetadata:
			meta = r
		default:
			if r.Required {
				return fmt.Errorf("%w: VHDX has a required region %s that imgpipe does not know", ErrUnsupported, r.GUID)
			}
			continue
		}
		if r.Offset < 1<<20 || r.Offset%(1<<20) != 0 || r.Length == 0 || r.Length%(1<<20) != 0 {
			return corruptf("VHDX region %s at %d (length %d) is not MiB-aligned past the header section", r.GUID, r.Offset, r.Length)
		}
		if r.Offset > uint64(v.logicalSize) || r.Offset+uint64(r.Length) > uint64(v.logicalSize) {
			return corruptf("VHDX region %s (%d bytes at %d) runs past the end of the %d-byte file", r.GUID, r.Length, r.Offset, v.logicalSize)
		}
	}
	if bat == nil || meta == nil {
		return corruptf("VHDX region table lacks the BAT or the metadata region")
	}
	if err := checkSpans(ctx, "VHDX", append([]span(nil), spans...)); err != nil {
		return err
	}
	if err := v.readMetadata(int64(meta.Offset), int64(meta.Length)); err != nil {
		return err
	}
	return v.readBAT(ctx, int64(bat.Offset), int64(bat.Length), spans)
}

func (v *vhdxImage) readMetadata(off, length int64) error {
	tb := make([]byte, vhdxMetaTableLen)
	if err := v.read(tb, off); err != nil {
		return err
	}
	if string(tb[:8]) != "metadata" {
		return corruptf("VHDX metadata table signature missing")
	}
	n := int(binary.LittleEndian.Uint16(tb[10:]))
	if n > 2047 {
		return corruptf("VHDX metadata table claims %d entries (at most 2047)", n)
	}
	found := map[guid][]byte{}
	for i := 0; i < n; i++ {
		e := tb[32+32*i:]
		var id guid
		copy(id[:], e[:16])
		itemOff := int64(binary.LittleEndian.Uint32(e[16:]))
		il := int64(binary.LittleEndian.Uint32(e[20:]))
		flags := binary.LittleEndian.Uint32(e[24:])
		isUser, isRequired := flags&1 != 0, flags&4 != 0
		known := !isUser && (id == guidFileParams || id == guidVirtualSize || id == guidPage83 ||
			id == guidLogicalSect || id == guidPhysicalSect || id == guidParentLoc)
		if !known {
			if isRequired {
				return fmt.Errorf("%w: VHDX has a required metadata item %s that imgpipe does not know", ErrUnsupported, id)
			}
			continue
		}
		if il == 0 {
			continue
		}
		if itemOff < vhdxMetaTableLen || il > 64<<10 || itemOff+il > length {
			return corruptf("VHDX metadata item %s (%d bytes at %d) lies outside the metadata region", id, il, itemOff)
		}
		b := make([]byte, il)
		if err := v.read(b, off+itemOff); err != nil {
			return err
		}
		found[id] = b
	}
	need := func(id guid, name string, size int) ([]byte, error) {
		b, ok := found[id]
		if !ok || len(b) < size {
			return nil, corruptf("VHDX metadata lacks %s", name)
		}
		return b, nil
	}
	fp, err := need(guidFileParams, "file parameters", 8)
	if err != nil {
		return err
	}
	v.blockSize = int64(binary.LittleEndian.Uint32(fp))
	bits := binary.LittleEndian.Uint32(fp[4:])
	v.leaveAllocated = bits&1 != 0
	if bits&2 != 0 {
		return fmt.Errorf("%w: differencing VHDX (it has a parent disk): merge it first, e.g. with Hyper-V's Merge-VHD or `qemu-img convert -O vhdx child.vhdx merged.vhdx`, then use the merged file", ErrUnsupported)
	}
	if bs := v.blockSize; bs < 1<<20 || bs > 256<<20 || bs&(bs-1) != 0 {
		return corruptf("VHDX block size %d is not a power of two between 1 MiB and 256 MiB", bs)
	}
	vs, err := need(guidVirtualSize, "virtual disk size", 8)
	if err != nil {
		return err
	}
	size := binary.LittleEndian.Uint64(vs)
	ls, err := need(guidLogicalSect, "logical sector size", 4)
	if err != nil {
		return err
	}
	v.logicalSector = int64(binary.LittleEndian.Uint32(ls))
	ps, err := need(guidPhysicalSect, "physical sector size", 4)
	if err != nil {
		return err
	}
	v.physicalSector = int64(binary.LittleEndian.Uint32(ps))
	if id, ok := found[guidPage83]; ok && len(id) >= 16 {
		copy(v.diskID[:], id)
	}
	if v.logicalSector != 512 && v.logicalSector != 4096 {
		return corruptf("VHDX logical sector size %d is neither 512 nor 4096", v.logicalSector)
	}
	if v.physicalSector != 512 && v.physicalSector != 4096 {
		return corruptf("VHDX physical sector size %d is neither 512 nor 4096", v.physicalSector)
	}
	if size == 0 || size > maxVirtualSize || size%uint64(v.logicalSector) != 0 {
		return corruptf("VHDX virtual size %d is zero, above 64 TiB or not a multiple of the %d-byte sector", size, v.logicalSector)
	}
	v.size = int64(size)
	v.chunkRatio = (1 << 23) * v.logicalSector / v.blockSize
	return nil
}

// readBAT reads the BAT and checks every payload block: a valid state, an
// offset inside the file with the whole block there (the last block only
// as far as the virtual size reaches), and no overlap with the file's
// structures (spans) or with another block. After that, the data the BAT
// describes is bounded by the file's size.
func (v *vhdxImage) readBAT(ctx context.Context, off, length int64, spans []span) error {
	v.blocks = (v.size + v.blockSize - 1) / v.blockSize
	entries := v.blocks + (v.blocks-1)/v.chunkRatio
	bytes := entries * 8
	if bytes > length {
		return corruptf("VHDX BAT region holds %d bytes but %d entries are needed", length, entries)
	}
	if bytes > maxTableBytes {
		return fmt.Errorf("%w: VHDX BAT of %d bytes is larger than imgpipe keeps in memory", ErrUnsupported, bytes)
	}
	if off+bytes > v.realSize && v.ov == nil {
		return corruptf("VHDX BAT runs past the end of the file")
	}
	raw := make([]byte, bytes)
	if err := v.read(raw, off); err != nil {
		return err
	}
	v.bat = make([]uint64, entries)
	for i := range v.bat {
		v.bat[i] = binary.LittleEndian.Uint64(raw[8*i:])
	}
	// Blocks are at least 1 MiB and may not overlap: no more of them than
	// the file has MiB can be present.
	maxBlocks := int64(len(spans)) + v.logicalSize>>20
	for b := int64(0); b < v.blocks; b++ {
		if b%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := v.bat[v.batIndex(b)]
		switch e & 7 {
		case batNotPresent, batUndefined, batZero, batUnmapped, batUnmappedOld:
		case batFully:
			fo := int64(e>>20) << 20
			length := min(v.blockSize, v.size-b*v.blockSize)
			if fo == 0 || fo > v.logicalSize || fo+length > v.logicalSize {
				return corruptf("VHDX block %d (%d bytes at file offset %d) lies outside the %d-byte file: the file is truncated or damaged; restore it from its source", b, length, fo, v.logicalSize)
			}
			if int64(len(spans)) >= maxBlocks {
				return corruptf("VHDX BAT has more present blocks than the %d-byte file can hold: blocks overlap (the file is damaged or crafted)", v.logicalSize)
			}
			spans = append(spans, span{start: fo, end: fo + length, kind: spanBlock, index: b})
		case batPartially:
			// Only a differencing disk (refused above) has sectors that
			// come from a parent ([MS-VHDX] 2.5.1.1; qemu fails reads of them too).
			return corruptf("VHDX block %d is partially present, which only a differencing disk may be, and this disk has no parent", b)
		default:
			return corruptf("VHDX block %d has invalid state %d", b, e&7)
		}
	}
	return checkSpans(ctx, "VHDX", spans)
}

func (v *vhdxImage) batIndex(block int64) int64 { return block + block/v.chunkRatio }

func (v *vhdxImage) Size() int64    { return v.size }
func (v *vhdxImage) Format() Format { return FormatVHDX }

func (v *vhdxImage) Info() Info {
	return Info{Format: FormatVHDX, VirtualSize: v.size, BlockSize: v.blockSize,
		LogicalSectorSize: v.logicalSector, PhysicalSectorSize: v.physicalSector,
		FileSize: v.realSize, LeaveBlocksAllocated: v.leaveAllocated, LogReplayed: v.ov != nil,
		DiskID: v.diskID.String()}
}

func (v *vhdxImage) identity() ([16]byte, time.Time) {
	return v.diskID.canonical(), v.f.modTime()
}

func (v *vhdxImage) Close() error {
	var err error
	v.once.Do(func() { err = v.f.Close() })
	return err
}

func (v *vhdxImage) ReadAt(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, v.size)
	if q == nil {
		return 0, eof
	}
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		b := pos / v.blockSize
		in := pos % v.blockSize
		n := int(min(int64(len(q)-done), v.blockSize-in))
		if err := v.readBlock(q[done:done+n], b, in); err != nil {
			return done, err
		}
		done += n
	}
	return len(q), eof
}

func (v *vhdxImage) readBlock(p []byte, b, in int64) error {
	e := v.bat[v.batIndex(b)]
	switch e & 7 {
	case batFully:
		return v.read(p, int64(e>>20)<<20+in)
	default:
		zero(p)
		return nil
	}
}

func (v *vhdxImage) Extents() ([]Extent, error) {
	// Where the file can hold data: its data ranges (holes left out) and,
	// after a log replay, the sectors the log wrote. Blocks past the real
	// end of the file (a log may extend it) read as zeros elsewhere.
	fileExt, err := v.f.dataRanges(0, v.realSize)
	if err != nil {
		return nil, err
	}
	if v.ov != nil && len(v.ov.sectors) > 0 {
		fileExt = append(fileExt, v.ov.sectorExtents()...)
		fileExt = normalize(fileExt, v.logicalSize)
	}
	var out []Extent
	for b := int64(0); b < v.blocks; b++ {
		e := v.bat[v.batIndex(b)]
		if e&7 != batFully {
			continue
		}
		vstart := b * v.blockSize
		length := min(v.blockSize, v.size-vstart)
		fo := int64(e>>20) << 20
		for _, d := range intersect(fileExt, fo, length) {
			out = appendExtent(out, Extent{vstart + d.Offset - fo, d.Length})
		}
	}
	return normalize(out, v.size), nil
}
