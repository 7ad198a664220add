package disk

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// VHD (Virtual Hard Disk Image Format Specification, version 1.0). All
// integers are big-endian. A fixed VHD is the raw disk followed by a 512-byte
// footer; a dynamic VHD is a footer copy, a dynamic header, a block
// allocation table (BAT) of 32-bit sector offsets, blocks (each a sector
// bitmap followed by data), and the footer.

const (
	footerSize       = 512
	vhdCookie        = "conectix"
	vhdDynCookie     = "cxsparse"
	vhdTypeFixed     = 2
	vhdTypeDynamic   = 3
	vhdTypeDiff      = 4
	vhdDynHeaderSize = 1024
	vhdUnallocated   = 0xFFFFFFFF
	vhdEpochUnix     = 946684800 // 2000-01-01T00:00:00Z, the VHD time stamp origin

	// Block sizes a dynamic VHD may declare. The specification only says
	// "a power of two multiple of sectors" (2 MiB by default; Hyper-V and
	// qemu-img write 2 MiB, Virtual PC 512 KiB). Below 4 KiB a block holds
	// fewer than 8 sectors and its sector bitmap is a fraction of a byte,
	// padded to one sector; qemu (block/vpc.c) computes that bitmap as 0
	// bytes and so reads such files differently. No tool writes them:
	// imgpipe refuses them rather than guess which reading is meant.
	minVHDBlock = 4 << 10
	maxVHDBlock = 256 << 20
)

// Footer is the decoded 512-byte VHD footer.
type Footer struct {
	Cookie             string
	Features           uint32
	FormatVersion      uint32
	DataOffset         uint64
	Timestamp          uint32 // seconds since 2000-01-01 UTC
	CreatorApp         string
	CreatorVersion     uint32
	CreatorHostOS      uint32
	OriginalSize       uint64
	CurrentSize        uint64
	Cylinders          uint16
	Heads              uint8
	SectorsPerTrack    uint8
	DiskType           uint32
	Checksum           uint32
	UniqueID           [16]byte
	SavedState         uint8
	ComputedChecksum   uint32 // the checksum the bytes actually have
	ReservedIsNonZero  bool
	OriginalFooterSize int
}

// ChecksumOK reports whether the stored checksum matches the footer bytes.
func (f *Footer) ChecksumOK() bool { return f.Checksum == f.ComputedChecksum }

// DiskTypeName names the footer's disk type.
func (f *Footer) DiskTypeName() string {
	switch f.DiskType {
	case vhdTypeFixed:
		return "fixed"
	case vhdTypeDynamic:
		return "dynamic"
	case vhdTypeDiff:
		return "differencing"
	default:
		return fmt.Sprintf("unknown (%d)", f.DiskType)
	}
}

// vhdChecksum is the one's complement of the byte sum of b, skipping the
// checksum field at [skip, skip+4).
func vhdChecksum(b []byte, skip int) uint32 {
	var sum uint32
	for i, c := range b {
		if i >= skip && i < skip+4 {
			continue
		}
		sum += uint32(c)
	}
	return ^sum
}

// ParseFooter decodes a VHD footer. It checks the cookie but not the
// checksum (see ChecksumOK), so that a readiness check can report a bad one.
func ParseFooter(b []byte) (*Footer, error) {
	if len(b) < footerSize {
		return nil, corruptf("VHD footer is %d bytes, want 512", len(b))
	}
	b = b[:footerSize]
	if string(b[:8]) != vhdCookie {
		return nil, corruptf("no VHD footer (cookie %q, want %q)", printable(b[:8]), vhdCookie)
	}
	f := &Footer{
		Cookie:          string(b[:8]),
		Features:        beU32(b[8:]),
		FormatVersion:   beU32(b[12:]),
		DataOffset:      beU64(b[16:]),
		Timestamp:       beU32(b[24:]),
		CreatorApp:      string(b[28:32]),
		CreatorVersion:  beU32(b[32:]),
		CreatorHostOS:   beU32(b[36:]),
		OriginalSize:    beU64(b[40:]),
		CurrentSize:     beU64(b[48:]),
		Cylinders:       binary.BigEndian.Uint16(b[56:]),
		Heads:           b[58],
		SectorsPerTrack: b[59],
		DiskType:        beU32(b[60:]),
		Checksum:        beU32(b[64:]),
		SavedState:      b[84],
	}
	copy(f.UniqueID[:], b[68:84])
	f.ComputedChecksum = vhdChecksum(b, 64)
	return f, nil
}

// Marshal encodes the footer and fills in its checksum.
func (f *Footer) Marshal() []byte {
	b := make([]byte, footerSize)
	copy(b[:8], vhdCookie)
	binary.BigEndian.PutUint32(b[8:], f.Features)
	binary.BigEndian.PutUint32(b[12:], f.FormatVersion)
	binary.BigEndian.PutUint64(b[16:], f.DataOffset)
	binary.BigEndian.PutUint32(b[24:], f.Timestamp)
	copy(b[28:32], f.CreatorApp)
	binary.BigEndian.PutUint32(b[32:], f.CreatorVersion)
	binary.BigEndian.PutUint32(b[36:], f.CreatorHostOS)
	binary.BigEndian.PutUint64(b[40:], f.OriginalSize)
	binary.BigEndian.PutUint64(b[48:], f.CurrentSize)
	binary.BigEndian.PutUint16(b[56:], f.Cylinders)
	b[58] = f.Heads
	b[59] = f.SectorsPerTrack
	binary.BigEndian.PutUint32(b[60:], f.DiskType)
	copy(b[68:84], f.UniqueID[:])
	b[84] = f.SavedState
	f.Checksum = vhdChecksum(b, 64)
	f.ComputedChecksum = f.Checksum
	binary.BigEndian.PutUint32(b[64:], f.Checksum)
	return b
}

// Geometry returns the CHS geometry the VHD specification (appendix
// "CHS calculation") assigns to a disk of size bytes.
func Geometry(size int64) (cylinders uint16, heads, sectorsPerTrack uint8) {
	total := size / 512
	if total > 65535*16*255 {
		total = 65535 * 16 * 255
	}
	var spt, hd, cth int64
	if total >= 65535*16*63 {
		spt, hd = 255, 16
		cth = total / spt
	} else {
		spt = 17
		cth = total / spt
		hd = (cth + 1023) / 1024
		if hd < 4 {
			hd = 4
		}
		if cth >= hd*1024 || hd > 16 {
			spt, hd = 31, 16
			cth = total / spt
		}
		if cth >= hd*1024 {
			spt, hd = 63, 16
			cth = total / spt
		}
	}
	return uint16(cth / hd), uint8(hd), uint8(spt)
}

// The creator fields imgpipe writes. "win " tells readers (Hyper-V, qemu)
// that the disk size is the footer's current size, not the CHS product; it is
// what Hyper-V and the Azure tooling write.
const (
	creatorApp     = "win "
	creatorVersion = 0x000A0000 // 10.0
	creatorHostOS  = 0x5769326B // "Wi2k"
)

// NewFixedFooter returns the footer of an Azure-valid fixed VHD of size bytes
// (size should be a whole number of MiB for Azure). A zero id gets a random one.
func NewFixedFooter(size int64, id [16]byte, ts time.Time) *Footer {
	c, h, s := Geometry(size)
	if id == ([16]byte{}) {
		_, _ = rand.Read(id[:])
		id[6] = id[6]&0x0f | 0x40 // version 4 UUID
		id[8] = id[8]&0x3f | 0x80
	}
	stamp := ts.Unix() - vhdEpochUnix
	if stamp < 0 || ts.IsZero() {
		stamp = 0
	}
	if stamp > 0xFFFFFFFF {
		stamp = 0xFFFFFFFF
	}
	return &Footer{
		Cookie:          vhdCookie,
		Features:        2, // reserved bit, always set
		FormatVersion:   0x00010000,
		DataOffset:      0xFFFFFFFFFFFFFFFF,
		Timestamp:       uint32(stamp),
		CreatorApp:      creatorApp,
		CreatorVersion:  creatorVersion,
		CreatorHostOS:   creatorHostOS,
		OriginalSize:    uint64(size),
		CurrentSize:     uint64(size),
		Cylinders:       c,
		Heads:           h,
		SectorsPerTrack: s,
		DiskType:        vhdTypeFixed,
		UniqueID:        id,
	}
}

func beU32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func beU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func printable(b []byte) string {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return "0x" + hex.EncodeToString(b)
		}
	}
	return string(b)
}

func formatUUID(id [16]byte) string {
	h := hex.EncodeToString(id[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// DynamicHeader is the decoded 1024-byte header of a dynamic VHD.
type DynamicHeader struct {
	Cookie          string
	DataOffset      uint64
	TableOffset     uint64
	HeaderVersion   uint32
	MaxTableEntries uint32
	BlockSize       uint32
	Checksum        uint32
	ComputedSum     uint32
}

// ParseDynamicHeader decodes and validates a dynamic VHD header.
func ParseDynamicHeader(b []byte) (*DynamicHeader, error) {
	if len(b) < vhdDynHeaderSize {
		return nil, corruptf("VHD dynamic header is %d bytes, want 1024", len(b))
	}
	b = b[:vhdDynHeaderSize]
	h := &DynamicHeader{
		Cookie:          string(b[:8]),
		DataOffset:      beU64(b[8:]),
		TableOffset:     beU64(b[16:]),
		HeaderVersion:   beU32(b[24:]),
		MaxTableEntries: beU32(b[28:]),
		BlockSize:       beU32(b[32:]),
		Checksum:        beU32(b[36:]),
		ComputedSum:     vhdChecksum(b, 36),
	}
	if h.Cookie != vhdDynCookie {
		return nil, corruptf("VHD dynamic header cookie is %q, want %q", printable(b[:8]), vhdDynCookie)
	}
	if h.Checksum != h.ComputedSum {
		return nil, corruptf("VHD dynamic header checksum is %#x, the bytes sum to %#x", h.Checksum, h.ComputedSum)
	}
	bs := h.BlockSize
	if bs < minVHDBlock || bs > maxVHDBlock || bs&(bs-1) != 0 {
		return nil, corruptf("VHD block size %d is not a power of two between 4 KiB and 256 MiB (Hyper-V and qemu-img write 2 MiB blocks)", bs)
	}
	return h, nil
}

// vhdImage reads fixed and dynamic VHDs.
type vhdImage struct {
	f        backing
	fileSize int64
	footer   *Footer
	size     int64
	format   Format
	// dataEnd is where block data must stop: the trailing footer (or the
	// end of the file when only the footer copy at 0 is valid).
	dataEnd int64
	// dynamic only
	blockSize  int64
	bitmapSize int64
	bat        []uint32
	once       sync.Once
}

func openVHD(ctx context.Context, f backing, fileSize int64) (Image, error) {
	var fb [footerSize]byte
	if err := readFull(f, fb[:], fileSize-footerSize); err != nil {
		return nil, fmt.Errorf("read VHD footer: %w", err)
	}
	ft, err := ParseFooter(fb[:])
	trailing := err == nil
	if err != nil && fileSize >= 2*footerSize {
		// The footer at the end is damaged; a dynamic VHD has a copy at 0.
		if err2 := readFull(f, fb[:], 0); err2 == nil {
			if ft2, err2 := ParseFooter(fb[:]); err2 == nil && ft2.DiskType == vhdTypeDynamic {
				ft, err = ft2, nil
			}
		}
	}
	if err != nil {
		return nil, err
	}
	if !ft.ChecksumOK() {
		return nil, corruptf("VHD footer checksum is %#x but the footer sums to %#x: the file is damaged or was edited by hand; re-create it from its source, or convert it with `imgpipe disk convert --to vhd-fixed` if its data is known good", ft.Checksum, ft.ComputedChecksum)
	}
	size := int64(ft.CurrentSize)
	if ft.CurrentSize > maxVirtualSize {
		return nil, corruptf("VHD virtual size %d is larger than 64 TiB", ft.CurrentSize)
	}
	v := &vhdImage{f: f, fileSize: fileSize, footer: ft, size: size, dataEnd: fileSize}
	if trailing {
		v.dataEnd = fileSize - footerSize
	}
	switch ft.DiskType {
	case vhdTypeFixed:
		v.format = FormatVHDFixed
		if fileSize-footerSize < size {
			return nil, corruptf("fixed VHD declares %d bytes of data but the file holds only %d: the file is truncated", size, fileSize-footerSize)
		}
		return v, nil
	case vhdTypeDynamic:
		v.format = FormatVHDDynamic
		return v, v.openDynamic(ctx)
	case vhdTypeDiff:
		return nil, fmt.Errorf("%w: differencing VHD (it needs its parent): merge it into its parent first, e.g. `qemu-img convert -O vpc child.vhd merged.vhd`", ErrUnsupported)
	default:
		return nil, corruptf("VHD disk type %d is not fixed (2), dynamic (3) or differencing (4)", ft.DiskType)
	}
}

// openDynamic reads the dynamic header and the BAT and checks the file's
// layout: the header, the BAT and every allocated block (its sector bitmap
// and data) lie inside the file, before the trailing footer, and no two of
// them overlap. After that, the data the BAT describes is bounded by the
// file's size, and so is every later walk over it.
func (v *vhdImage) openDynamic(ctx context.Context) error {
	off := v.footer.DataOffset
	if off < footerSize || off > uint64(v.dataEnd) || off+vhdDynHeaderSize > uint64(v.dataEnd) {
		return corruptf("VHD dynamic header offset %d is outside the %d-byte file (or on its footer)", off, v.fileSize)
	}
	hb := make([]byte, vhdDynHeaderSize)
	if err := readFull(v.f, hb, int64(off)); err != nil {
		return fmt.Errorf("read VHD dynamic header: %w", err)
	}
	h, err := ParseDynamicHeader(hb)
	if err != nil {
		return err
	}
	v.blockSize = int64(h.BlockSize)
	sectorsPerBlock := v.blockSize / 512
	// One bit per sector, padded to a whole sector.
	v.bitmapSize = ((sectorsPerBlock+7)/8 + 511) &^ 511
	blocks := (v.size + v.blockSize - 1) / v.blockSize
	if int64(h.MaxTableEntries) < blocks {
		return corruptf("VHD BAT has %d entries but the %d-byte disk needs %d", h.MaxTableEntries, v.size, blocks)
	}
	batBytes := blocks * 4
	if batBytes > maxTableBytes {
		return fmt.Errorf("%w: VHD BAT of %d bytes is larger than imgpipe keeps in memory", ErrUnsupported, batBytes)
	}
	if h.TableOffset > uint64(v.dataEnd) || int64(h.TableOffset)+batBytes > v.dataEnd {
		return corruptf("VHD BAT (%d bytes at %d) runs past the end of the %d-byte file", batBytes, h.TableOffset, v.fileSize)
	}
	raw := make([]byte, batBytes)
	if err := readFull(v.f, raw, int64(h.TableOffset)); err != nil {
		return fmt.Errorf("read VHD BAT: %w", err)
	}
	spans := []span{
		{start: 0, end: footerSize, kind: spanFooter},
		{start: int64(off), end: int64(off) + vhdDynHeaderSize, kind: spanHeader},
	}
	if batBytes > 0 {
		spans = append(spans, span{start: int64(h.TableOffset), end: int64(h.TableOffset) + batBytes, kind: spanTable})
	}
	// Each allocated block takes bitmap + data bytes; more blocks than fit
	// in the file cannot all be laid out without overlapping.
	maxBlocks := v.dataEnd/(v.bitmapSize+v.blockSize) + 1
	v.bat = make([]uint32, blocks)
	for i := range v.bat {
		if i%ctxEvery == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		e := beU32(raw[i*4:])
		v.bat[i] = e
		if e == vhdUnallocated {
			continue
		}
		start := int64(e) * 512
		// The last block may be short in files written by some tools (its
		// missing tail reads as zeros), but its sector bitmap must be there.
		if start+v.bitmapSize > v.dataEnd {
			return corruptf("VHD block %d at sector %d lies past the end of the file", i, e)
		}
		if int64(len(spans)) >= maxBlocks+3 {
			return corruptf("VHD BAT allocates more blocks than the %d-byte file can hold: blocks overlap (the file is damaged or crafted)", v.fileSize)
		}
		spans = append(spans, span{start: start, end: start + v.bitmapSize + v.blockSize, kind: spanBlock, index: int64(i)})
	}
	return checkSpans(ctx, "VHD", spans)
}

func (v *vhdImage) Size() int64    { return v.size }
func (v *vhdImage) Format() Format { return v.format }

func (v *vhdImage) Info() Info {
	in := Info{Format: v.format, VirtualSize: v.size, LogicalSectorSize: 512,
		PhysicalSectorSize: 512, FileSize: v.fileSize, DiskID: formatUUID(v.footer.UniqueID)}
	if v.format == FormatVHDDynamic {
		in.BlockSize = v.blockSize
	}
	return in
}

// Footer returns the decoded footer.
func (v *vhdImage) Footer() *Footer { return v.footer }

func (v *vhdImage) identity() ([16]byte, time.Time) {
	return v.footer.UniqueID, time.Unix(int64(v.footer.Timestamp)+vhdEpochUnix, 0)
}

func (v *vhdImage) Close() error {
	var err error
	v.once.Do(func() { err = v.f.Close() })
	return err
}

func (v *vhdImage) ReadAt(p []byte, off int64) (int, error) {
	q, eof := clampRead(p, off, v.size)
	if q == nil {
		return 0, eof
	}
	if v.format == FormatVHDFixed {
		if err := readFull(v.f, q, off); err != nil {
			return 0, fmt.Errorf("read fixed VHD at %d: %w", off, err)
		}
		return len(q), eof
	}
	done := 0
	for done < len(q) {
		pos := off + int64(done)
		bi := pos / v.blockSize
		in := pos % v.blockSize
		n := int(min(int64(len(q)-done), v.blockSize-in))
		if err := v.readBlock(q[done:done+n], bi, in); err != nil {
			return done, err
		}
		done += n
	}
	return len(q), eof
}

// readBlock reads p from block bi at offset in, honouring the sector bitmap:
// sectors whose bit is clear read as zeros.
func (v *vhdImage) readBlock(p []byte, bi, in int64) error {
	e := v.bat[bi]
	if e == vhdUnallocated {
		zero(p)
		return nil
	}
	base := int64(e) * 512
	firstSec := in / 512
	lastSec := (in + int64(len(p)) - 1) / 512
	bm := make([]byte, lastSec/8-firstSec/8+1)
	if err := readFull(v.f, bm, base+firstSec/8); err != nil {
		return fmt.Errorf("read VHD sector bitmap of block %d: %w", bi, err)
	}
	bit := func(s int64) bool {
		i := s/8 - firstSec/8
		return bm[i]&(0x80>>(s%8)) != 0
	}
	data := base + v.bitmapSize
	pos := in
	end := in + int64(len(p))
	for pos < end {
		s := pos / 512
		set := bit(s)
		runEnd := min(end, (s+1)*512)
		for runEnd < end && bit(runEnd/512) == set {
			runEnd = min(end, (runEnd/512+1)*512)
		}
		dst := p[pos-in : runEnd-in]
		if set {
			var n int
			var err error
			if avail := v.dataEnd - (data + pos); avail > 0 {
				n, err = v.f.ReadAt(dst[:min(int64(len(dst)), avail)], data+pos)
			}
			if n < len(dst) {
				if err != nil && !errors.Is(err, io.EOF) {
					return fmt.Errorf("read VHD block %d: %w", bi, err)
				}
				zero(dst[n:]) // a short last block reads as zeros past the file end
			}
		} else {
			zero(dst)
		}
		pos = runEnd
	}
	return nil
}

func (v *vhdImage) Extents() ([]Extent, error) {
	if v.format == FormatVHDFixed {
		ext, err := v.f.dataRanges(0, v.size)
		if err != nil {
			return nil, err
		}
		return normalize(ext, v.size), nil
	}
	// Dynamic: allocated blocks, narrowed by their sector bitmaps and by
	// holes in the file. The work is bounded by the file: open made sure
	// that blocks do not overlap.
	fileExt, err := v.f.dataRanges(0, v.dataEnd)
	if err != nil {
		return nil, err
	}
	var out []Extent
	bm := make([]byte, v.bitmapSize)
	for bi, e := range v.bat {
		if e == vhdUnallocated {
			continue
		}
		base := int64(e) * 512
		if err := readFull(v.f, bm, base); err != nil {
			return nil, fmt.Errorf("read VHD sector bitmap of block %d: %w", bi, err)
		}
		vstart := int64(bi) * v.blockSize
		data := base + v.bitmapSize
		sectors := min(v.blockSize, v.size-vstart) / 512
		for _, r := range bitmapRuns(bm, sectors) {
			fileOff := data + r.Offset*512
			for _, d := range intersect(fileExt, fileOff, r.Length*512) {
				out = appendExtent(out, Extent{vstart + d.Offset - data, d.Length})
			}
		}
	}
	return normalize(out, v.size), nil
}

// bitmapRuns returns the runs of set bits among the first n bits of a
// most-significant-bit-first bitmap, in bits. Whole bytes of zeros or ones
// are taken at once.
func bitmapRuns(bm []byte, n int64) []Extent {
	var out []Extent
	var runStart int64 = -1
	for s := int64(0); s < n; {
		b := bm[s/8]
		if s%8 == 0 && s+8 <= n && (b == 0 || b == 0xFF) {
			if b == 0xFF && runStart < 0 {
				runStart = s
			} else if b == 0 && runStart >= 0 {
				out = append(out, Extent{runStart, s - runStart})
				runStart = -1
			}
			s += 8
			continue
		}
		set := b&(0x80>>(s%8)) != 0
		if set && runStart < 0 {
			runStart = s
		} else if !set && runStart >= 0 {
			out = append(out, Extent{runStart, s - runStart})
			runStart = -1
		}
		s++
	}
	if runStart >= 0 {
		out = append(out, Extent{runStart, n - runStart})
	}
	return out
}

// intersect returns the parts of the sorted extents ext that fall inside
// [off, off+length).
func intersect(ext []Extent, off, length int64) []Extent {
	end := off + length
	// first extent whose end is past off
	lo, hi := 0, len(ext)
	for lo < hi {
		m := (lo + hi) / 2
		if ext[m].End() <= off {
			lo = m + 1
		} else {
			hi = m
		}
	}
	var out []Extent
	for i := lo; i < len(ext) && ext[i].Offset < end; i++ {
		s := max(ext[i].Offset, off)
		e := min(ext[i].End(), end)
		if e > s {
			out = append(out, Extent{s, e - s})
		}
	}
	return out
}
