package disk

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"os"
	"sync"
	"unicode/utf16"
)

// vhdxLayout writes a dynamic VHDX: the header section (file identifier,
// two headers, two region tables) in the first MiB, an empty 1 MiB log, a
// 1 MiB metadata region, the BAT, then payload blocks allocated in the order
// data first reaches them. Blocks holding only zeros are never allocated
// (PAYLOAD_BLOCK_NOT_PRESENT reads as zeros in a dynamic VHDX), and zero
// runs inside allocated blocks stay holes in the file.
type vhdxLayout struct {
	size      int64 // virtual size (a multiple of the logical sector)
	logical   int64 // logical sector size, kept from the source
	physical  int64
	blockSize int64
	blocks    int64
	chunk     int64 // chunk ratio
	batOff    int64
	batLen    int64
	diskID    guid

	mu       sync.Mutex
	blockOff []int64 // file offset of each payload block, 0 = not allocated
	next     int64   // next free file offset
}

const (
	vhdxLogOff  = 1 << 20
	vhdxLogLen  = 1 << 20
	vhdxMetaOff = 2 << 20
	vhdxMetaLen = 1 << 20
	vhdxBATOff  = 3 << 20
)

func newVHDXLayout(src Image, blockSize int64) (*vhdxLayout, error) {
	logical, physical := int64(512), int64(4096)
	if d, ok := src.(Describer); ok {
		in := d.Info()
		if in.LogicalSectorSize == 4096 {
			logical = 4096
		}
		if in.PhysicalSectorSize == 512 || in.PhysicalSectorSize == 4096 {
			physical = max(in.PhysicalSectorSize, logical)
		}
	}
	size := (src.Size() + logical - 1) &^ (logical - 1)
	if size == 0 {
		return nil, fmt.Errorf("cannot write an empty VHDX: the source has no data")
	}
	if size > maxVirtualSize {
		return nil, fmt.Errorf("virtual size %d is above the VHDX maximum of 64 TiB", size)
	}
	l := &vhdxLayout{size: size, logical: logical, physical: physical, blockSize: blockSize}
	l.blocks = (size + blockSize - 1) / blockSize
	l.chunk = (1 << 23) * logical / blockSize
	entries := l.blocks + (l.blocks-1)/l.chunk
	l.batOff = vhdxBATOff
	l.batLen = (entries*8 + mib - 1) &^ (mib - 1)
	l.blockOff = make([]int64, l.blocks)
	l.next = l.batOff + l.batLen
	if ider, ok := src.(identifier); ok {
		id, _ := ider.identity()
		l.diskID = guidFromCanonical(id)
	}
	if l.diskID == (guid{}) {
		_, _ = rand.Read(l.diskID[:])
	}
	return l, nil
}

func guidFromCanonical(b [16]byte) guid {
	var g guid
	g[0], g[1], g[2], g[3] = b[3], b[2], b[1], b[0]
	g[4], g[5] = b[5], b[4]
	g[6], g[7] = b[7], b[6]
	copy(g[8:], b[8:])
	return g
}

func (l *vhdxLayout) boundary() int64 { return l.blockSize }

func (l *vhdxLayout) place(off int64) (int64, error) {
	b := off / l.blockSize
	if b >= l.blocks {
		return 0, fmt.Errorf("offset %d is past the virtual size %d", off, l.size)
	}
	l.mu.Lock()
	fo := l.blockOff[b]
	if fo == 0 {
		fo = l.next
		l.blockOff[b] = fo
		l.next += l.blockSize
	}
	l.mu.Unlock()
	return fo + off%l.blockSize, nil
}

func (l *vhdxLayout) finish(f *os.File) (int64, error) {
	put := func(b []byte, off int64) error {
		_, err := f.WriteAt(b, off)
		return err
	}
	// File type identifier.
	id := make([]byte, 64<<10)
	copy(id, vhdxSignature)
	for i, r := range utf16.Encode([]rune("imgpipe")) {
		binary.LittleEndian.PutUint16(id[8+2*i:], r)
	}
	if err := put(id, 0); err != nil {
		return 0, err
	}
	// Headers: both valid, the second current.
	h := vhdxHeader{Version: 1, LogLength: vhdxLogLen, LogOffset: vhdxLogOff}
	_, _ = rand.Read(h.FileWriteGUID[:])
	_, _ = rand.Read(h.DataWriteGUID[:])
	for i, off := range []int64{64 << 10, 128 << 10} {
		h.Sequence = uint64(i + 1)
		if err := put(h.marshal(), off); err != nil {
			return 0, err
		}
	}
	// Region tables (identical copies).
	rt := make([]byte, vhdxRegionSize)
	copy(rt, "regi")
	binary.LittleEndian.PutUint32(rt[8:], 2)
	for i, r := range []vhdxRegion{{guidBAT, uint64(l.batOff), uint32(l.batLen), true}, {guidMetadata, vhdxMetaOff, vhdxMetaLen, true}} {
		e := rt[16+32*i:]
		copy(e, r.GUID[:])
		binary.LittleEndian.PutUint64(e[16:], r.Offset)
		binary.LittleEndian.PutUint32(e[24:], r.Length)
		binary.LittleEndian.PutUint32(e[28:], 1)
	}
	binary.LittleEndian.PutUint32(rt[4:], crc32cZeroed(rt, 4))
	for _, off := range []int64{192 << 10, 256 << 10} {
		if err := put(rt, off); err != nil {
			return 0, err
		}
	}
	// Metadata: table, then items from 64 KiB on.
	md := make([]byte, vhdxMetaTableLen+4096)
	copy(md, "metadata")
	type item struct {
		id    guid
		data  []byte
		flags uint32 // bit 1: virtual disk, bit 2: required
	}
	le32 := func(v uint32) []byte { b := make([]byte, 4); binary.LittleEndian.PutUint32(b, v); return b }
	le64 := func(v uint64) []byte { b := make([]byte, 8); binary.LittleEndian.PutUint64(b, v); return b }
	fp := make([]byte, 8)
	binary.LittleEndian.PutUint32(fp, uint32(l.blockSize))
	items := []item{
		{guidFileParams, fp, 4},
		{guidVirtualSize, le64(uint64(l.size)), 6},
		{guidPage83, l.diskID[:], 6},
		{guidLogicalSect, le32(uint32(l.logical)), 6},
		{guidPhysicalSect, le32(uint32(l.physical)), 6},
	}
	binary.LittleEndian.PutUint16(md[10:], uint16(len(items)))
	at := int64(vhdxMetaTableLen)
	for i, it := range items {
		e := md[32+32*i:]
		copy(e, it.id[:])
		binary.LittleEndian.PutUint32(e[16:], uint32(at))
		binary.LittleEndian.PutUint32(e[20:], uint32(len(it.data)))
		binary.LittleEndian.PutUint32(e[24:], it.flags)
		copy(md[at:], it.data)
		at += int64((len(it.data) + 7) &^ 7)
	}
	if err := put(md, vhdxMetaOff); err != nil {
		return 0, err
	}
	// BAT: payload entries interleaved with (absent) sector bitmap entries.
	entries := l.blocks + (l.blocks-1)/l.chunk
	bat := make([]byte, entries*8)
	for b := int64(0); b < l.blocks; b++ {
		if fo := l.blockOff[b]; fo != 0 {
			binary.LittleEndian.PutUint64(bat[8*(b+b/l.chunk):], uint64(fo)|batFully)
		}
	}
	if err := put(bat, l.batOff); err != nil {
		return 0, err
	}
	return l.next, nil
}
