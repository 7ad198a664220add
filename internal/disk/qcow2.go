package disk

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// qcow2 (QEMU copy-on-write, versions 2 and 3; docs/interop/qcow2.txt in
// QEMU's source). All integers are big-endian. The virtual disk is cut into
// clusters; a two-level table maps guest clusters to host clusters: the L1
// table (l1_size entries at l1_table_offset) points at L2 tables, each one
// cluster long, whose entries describe one guest cluster each (or, with
// extended L2 entries, 32 subclusters). A guest cluster is unallocated (reads
// as zeros here: backing files are refused), a zero cluster (v3), a standard
// cluster at a host offset, or a compressed cluster (deflate or zstd).
//
// Opening walks every L2 table once: work and memory are bounded by the
// file's real size (each L2 table and each data cluster must lie inside the
// file and be used once), so a small file cannot claim a huge amount of
// data. Refcounts are not needed to read and are not read.

const (
	qcow2Magic = "QFI\xfb"

	qcow2MinClusterBits = 9  // 512 bytes
	qcow2MaxClusterBits = 21 // 2 MiB, QEMU's limit

	// incompatible feature bits (v3)
	qcow2IncompatDirty       = 1 << 0
	qcow2IncompatCorrupt     = 1 << 1
	qcow2IncompatExtData     = 1 << 2
	qcow2IncompatCompression = 1 << 3
	qcow2IncompatExtL2       = 1 << 4
	qcow2IncompatKnown       = qcow2IncompatDirty | qcow2IncompatCorrupt | qcow2IncompatExtData | qcow2IncompatCompression | qcow2IncompatExtL2

	// header extension types
	qcow2ExtEnd          = 0
	qcow2ExtFeatureNames = 0x6803f857
	qcow2ExtDataFile     = 0x44415441

	// table entry masks
	qcow2L1Reserved   = 0x7f000000000001ff
	qcow2OffsetMask   = 0x00fffffffffffe00
	qcow2Compressed   = 1 << 62
	qcow2ZeroFlag     = 1 << 0
	qcow2L2Reserved   = 0x3f000000000001fe
	qcow2ExtL2Reserve = 0x3f000000000001ff // bit 0 is reserved too with extended L2

	qcow2CompressionZlib = 0
	qcow2CompressionZstd = 1
)

// qcow2L2CacheBytes bounds the L2 tables kept in memory after opening (and,
// separately, those loaded on demand for larger images). A variable for tests.
var qcow2L2CacheBytes int64 = 32 << 20

// qcow2Image reads qcow2 files.
type qcow2Image struct {
	f        backing
	fileSize int64

	version     uint32
	size        int64
	clusterBits uint
	clusterSize int64
	extL2       bool
	entryWords  int64 // uint64 words per L2 entry: 1, or 2 with extended L2
	l2Entries   int64 // entries per L2 table
	subSize     int64 // subcluster size (extended L2), else clusterSize
	compression uint8
	l1Offset    int64
	l1          []uint64
	ext         []Extent  // compressed clusters (always data)
	runs        []hostRun // standard data, contiguous in guest and host

	extOnce sync.Once
	extAll  []Extent
	extErr  error

	l2    map[int64][]uint64 // L1 index -> L2 table, kept at open (read-only after)
	mu    sync.Mutex
	extra map[int64][]uint64 // tables loaded on demand past the open-time budget

	dec  *decompressors
	once sync.Once
}

// hostRun is guest bytes [guest, guest+n) stored at host.
type hostRun struct{ guest, host, n int64 }

func (q *qcow2Image) addRun(guest, host, n int64) {
	if k := len(q.runs); k > 0 {
		r := &q.runs[k-1]
		if r.guest+r.n == guest && r.host+r.n == host {
			r.n += n
			return
		}
	}
	q.runs = append(q.runs, hostRun{guest, host, n})
}

type qcow2Header struct {
	version         uint32
	backingOffset   uint64
	backingSize     uint32
	clusterBits     uint32
	size            uint64
	cryptMethod     uint32
	l1Size          uint32
	l1Offset        uint64
	refcountOffset  uint64
	nbSnapshots     uint32
	incompatible    uint64
	compatible      uint64
	autoclear       uint64
	refcountOrder   uint32
	headerLength    uint32
	compressionType uint8
}

func parseQcow2Header(b []byte) (*qcow2Header, error) {
	if len(b) < 72 || string(b[:4]) != qcow2Magic {
		return nil, corruptf("qcow2 magic missing")
	}
	h := &qcow2Header{
		version:        beU32(b[4:]),
		backingOffset:  beU64(b[8:]),
		backingSize:    beU32(b[16:]),
		clusterBits:    beU32(b[20:]),
		size:           beU64(b[24:]),
		cryptMethod:    beU32(b[32:]),
		l1Size:         beU32(b[36:]),
		l1Offset:       beU64(b[40:]),
		refcountOffset: beU64(b[48:]),
		nbSnapshots:    beU32(b[60:]),
		refcountOrder:  4,
		headerLength:   72,
	}
	switch h.version {
	case 2:
	case 3:
		if len(b) < 104 {
			return nil, corruptf("qcow2 v3 header is %d bytes, shorter than 104", len(b))
		}
		h.incompatible = beU64(b[72:])
		h.compatible = beU64(b[80:])
		h.autoclear = beU64(b[88:])
		h.refcountOrder = beU32(b[96:])
		h.headerLength = beU32(b[100:])
		if h.headerLength < 104 || h.headerLength%8 != 0 {
			return nil, corruptf("qcow2 header length %d (at least 104 and a multiple of 8)", h.headerLength)
		}
		if h.headerLength > 104 && len(b) > 104 {
			h.compressionType = b[104]
		}
	case 1:
		return nil, &FormatError{Format: "qcow", Kind: ErrUnsupported,
			Reason: "a qcow version 1 image (the format before qcow2)", convertFrom: "qcow"}
	default:
		return nil, fmt.Errorf("%w: qcow2 version %d (imgpipe reads versions 2 and 3): convert it with a qemu-img that knows it: qemu-img convert -O qcow2 -o compat=1.1 IN OUT.qcow2", ErrUnsupported, h.version)
	}
	return h, nil
}

// qcow2Extensions are the header extensions imgpipe looks at (for messages).
type qcow2Extensions struct {
	featureNames map[[2]uint8]string // (type, bit) -> name
	dataFile     string
}

func parseQcow2Extensions(b []byte) qcow2Extensions {
	var x qcow2Extensions
	for i := 0; len(b) >= 8 && i < 1024; i++ {
		typ, n := beU32(b), int64(beU32(b[4:]))
		b = b[8:]
		if typ == qcow2ExtEnd || n > int64(len(b)) {
			break
		}
		d := b[:n]
		switch typ {
		case qcow2ExtFeatureNames:
			x.featureNames = map[[2]uint8]string{}
			for ; len(d) >= 48; d = d[48:] {
				x.featureNames[[2]uint8{d[0], d[1]}] = printable(d[2:48])
			}
		case qcow2ExtDataFile:
			x.dataFile = printable(d)
		}
		b = b[min(int64(len(b)), (n+7)&^7):]
	}
	return x
}

func openQcow2(ctx context.Context, f backing, fileSize int64) (Image, error) {
	if fileSize < 72 {
		return nil, corruptf("qcow2 file is %d bytes, shorter than its header", fileSize)
	}
	head := make([]byte, min(fileSize, 4096))
	if err := readFull(f, head, 0); err != nil {
		return nil, fmt.Errorf("read qcow2 header: %w", err)
	}
	h, err := parseQcow2Header(head)
	if err != nil {
		return nil, err
	}
	if h.clusterBits < qcow2MinClusterBits || h.clusterBits > qcow2MaxClusterBits {
		return nil, corruptf("qcow2 cluster size 2^%d (QEMU uses 2^9 to 2^21)", h.clusterBits)
	}
	q := &qcow2Image{
		f: f, fileSize: fileSize, version: h.version,
		clusterBits: uint(h.clusterBits), clusterSize: 1 << h.clusterBits,
		compression: h.compressionType, entryWords: 1,
	}
	if int64(h.headerLength) > q.clusterSize {
		return nil, corruptf("qcow2 header length %d exceeds the cluster size %d", h.headerLength, q.clusterSize)
	}
	// The header cluster (with its extensions) is read whole for the messages below.
	if int64(len(head)) < min(fileSize, q.clusterSize) {
		head = make([]byte, min(fileSize, q.clusterSize))
		if err := readFull(f, head, 0); err != nil {
			return nil, fmt.Errorf("read qcow2 header cluster: %w", err)
		}
	}
	var exts qcow2Extensions
	if int64(h.headerLength) < int64(len(head)) {
		exts = parseQcow2Extensions(head[h.headerLength:])
	}
	if err := q.refuse(h, head, exts); err != nil {
		return nil, err
	}
	if h.size == 0 || h.size > maxVirtualSize {
		return nil, corruptf("qcow2 virtual size %d (imgpipe reads 1 byte to 64 TiB)", h.size)
	}
	q.size = int64(h.size)
	if h.incompatible&qcow2IncompatExtL2 != 0 {
		if h.clusterBits < 14 {
			return nil, corruptf("qcow2 with extended L2 entries and %d-byte clusters (at least 16 KiB)", q.clusterSize)
		}
		q.extL2, q.entryWords = true, 2
	}
	q.l2Entries = q.clusterSize / (8 * q.entryWords)
	q.subSize = q.clusterSize
	if q.extL2 {
		q.subSize = q.clusterSize / 32
	}
	if err := q.readL1(h); err != nil {
		return nil, err
	}
	if err := q.walk(ctx); err != nil {
		return nil, err
	}
	q.dec = newDecompressors(q.compression, q.clusterSize)
	return q, nil
}

// refuse turns every feature imgpipe does not read into an error that says
// what to do, before anything else is trusted.
func (q *qcow2Image) refuse(h *qcow2Header, head []byte, x qcow2Extensions) error {
	if h.backingOffset != 0 {
		name := ""
		if n := int64(h.backingSize); n > 0 && n <= 1023 && h.backingOffset+uint64(n) <= uint64(len(head)) {
			name = fmt.Sprintf(" %q", printable(head[h.backingOffset:h.backingOffset+uint64(n)]))
		}
		return fmt.Errorf("%w: qcow2 with a backing file%s (an overlay holds only the changes): flatten it into a standalone image first: qemu-img convert -O qcow2 IN OUT.qcow2", ErrUnsupported, name)
	}
	if h.cryptMethod != 0 {
		kind := "AES"
		if h.cryptMethod == 2 {
			kind = "LUKS"
		}
		return fmt.Errorf("%w: encrypted qcow2 (%s): decrypt it first: qemu-img convert --object secret,id=sec0,file=PASSPHRASE_FILE --image-opts driver=qcow2,file.filename=IN,encrypt.key-secret=sec0 -O qcow2 OUT.qcow2", ErrUnsupported, kind)
	}
	inc := h.incompatible
	if inc&qcow2IncompatCorrupt != 0 {
		return fmt.Errorf("%w: QEMU marked this qcow2 corrupt (incompatible feature bit 1): check and repair a copy with qemu-img check -r all IN, or rebuild the image", ErrCorrupt)
	}
	if inc&qcow2IncompatDirty != 0 {
		return fmt.Errorf("%w: qcow2 was not closed cleanly (dirty bit set; the VM or qemu-img may still be writing it): make sure nothing has it open, then repair it with qemu-img check -r all IN", ErrUnsupported)
	}
	if inc&qcow2IncompatExtData != 0 {
		where := ""
		if x.dataFile != "" {
			where = fmt.Sprintf(" (%q)", x.dataFile)
		}
		return fmt.Errorf("%w: qcow2 with an external data file%s: copy the data into a standalone image first: qemu-img convert -O qcow2 IN OUT.qcow2", ErrUnsupported, where)
	}
	if unknown := inc &^ qcow2IncompatKnown; unknown != 0 {
		var names []string
		for bit := uint8(0); bit < 64; bit++ {
			if unknown&(1<<bit) != 0 {
				n := x.featureNames[[2]uint8{0, bit}]
				if n == "" {
					n = "unnamed"
				}
				names = append(names, fmt.Sprintf("bit %d (%s)", bit, n))
			}
		}
		return fmt.Errorf("%w: qcow2 uses incompatible features imgpipe does not know: %v: rewrite it without them: qemu-img convert -O qcow2 IN OUT.qcow2", ErrUnsupported, names)
	}
	if inc&qcow2IncompatCompression != 0 || h.compressionType != 0 {
		if inc&qcow2IncompatCompression == 0 {
			return corruptf("qcow2 compression type %d without the compression-type feature bit", h.compressionType)
		}
		if h.compressionType != qcow2CompressionZlib && h.compressionType != qcow2CompressionZstd {
			return fmt.Errorf("%w: qcow2 compression type %d (imgpipe reads zlib and zstd): rewrite it: qemu-img convert -O qcow2 IN OUT.qcow2", ErrUnsupported, h.compressionType)
		}
	}
	return nil
}

// readL1 checks and loads the L1 table: cluster-aligned, inside the file, and
// long enough for the virtual size.
func (q *qcow2Image) readL1(h *qcow2Header) error {
	covers := q.clusterSize * q.l2Entries // bytes one L2 table maps
	need := (q.size + covers - 1) / covers
	if int64(h.l1Size) < need {
		return corruptf("qcow2 L1 table has %d entries, %d needed for %d bytes", h.l1Size, need, q.size)
	}
	l1Bytes := int64(h.l1Size) * 8
	if l1Bytes > maxTableBytes {
		return corruptf("qcow2 L1 table of %d bytes (at most %d)", l1Bytes, maxTableBytes)
	}
	off := h.l1Offset
	if off == 0 || off%uint64(q.clusterSize) != 0 || off > uint64(q.fileSize) || uint64(q.fileSize)-off < uint64(need*8) {
		return corruptf("qcow2 L1 table at %d (%d entries) is unaligned or past the end of the %d-byte file", off, need, q.fileSize)
	}
	// Entries past those the size needs are never used; read only those.
	buf := make([]byte, need*8)
	if err := readFull(q.f, buf, int64(off)); err != nil {
		return fmt.Errorf("read qcow2 L1 table: %w", err)
	}
	q.l1Offset = int64(off)
	q.l1 = make([]uint64, need)
	for i := range q.l1 {
		q.l1[i] = binary.BigEndian.Uint64(buf[8*i:])
	}
	return nil
}

// clusterSet is a bitmap over the file's clusters.
type clusterSet []uint64

func (s clusterSet) testAndSet(c int64) bool {
	was := s[c/64]&(1<<(c%64)) != 0
	s[c/64] |= 1 << (c % 64)
	return was
}

// walk reads every L2 table once, checks every entry and builds the
// allocation map. Each L2 table and each standard data cluster must lie in
// the file and be referenced once; compressed clusters must start in the
// file at distinct offsets and not share host clusters with anything else.
func (q *qcow2Image) walk(ctx context.Context) error {
	nclusters := (q.fileSize + q.clusterSize - 1) >> q.clusterBits
	used := make(clusterSet, nclusters/64+1)       // header, L1, L2 tables, data
	compressed := make(clusterSet, nclusters/64+1) // host clusters holding compressed data
	used.testAndSet(0)
	for c := q.l1Offset >> q.clusterBits; c<<q.clusterBits < q.l1Offset+int64(len(q.l1))*8; c++ {
		if used.testAndSet(c) {
			return corruptf("qcow2 L1 table overlaps the header")
		}
	}
	var cstarts []int64
	keep := int64(0)
	q.l2 = map[int64][]uint64{}
	raw := make([]byte, q.clusterSize)
	covers := q.clusterSize * q.l2Entries
	for i, e := range q.l1 {
		if i%64 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		if e&qcow2L1Reserved != 0 {
			return corruptf("qcow2 L1 entry %d has reserved bits set (%#x)", i, e)
		}
		off := int64(e & qcow2OffsetMask)
		if off == 0 {
			continue
		}
		if off%q.clusterSize != 0 || off+q.clusterSize > q.fileSize {
			return corruptf("qcow2 L2 table %d at %d is unaligned or past the end of the %d-byte file", i, off, q.fileSize)
		}
		if used.testAndSet(off >> q.clusterBits) {
			return corruptf("qcow2 L2 table %d at %d overlaps other metadata or another table", i, off)
		}
		if err := readFull(q.f, raw, off); err != nil {
			return fmt.Errorf("read qcow2 L2 table %d: %w", i, err)
		}
		t := decodeL2(raw)
		base := int64(i) * covers
		for j := int64(0); j < q.l2Entries && base+j*q.clusterSize < q.size; j++ {
			guest := base + j*q.clusterSize
			d := t[j*q.entryWords]
			var bitmap uint64
			if q.extL2 {
				bitmap = t[j*q.entryWords+1]
			}
			if d&qcow2Compressed != 0 {
				host, n := q.compressedRange(d)
				if host == 0 || host >= q.fileSize {
					return corruptf("qcow2 compressed cluster at guest offset %d starts at %d, outside the %d-byte file", guest, host, q.fileSize)
				}
				end := min(host+n, q.fileSize)
				for c := host >> q.clusterBits; c<<q.clusterBits < end; c++ {
					compressed.testAndSet(c)
				}
				cstarts = append(cstarts, host)
				q.ext = appendExtent(q.ext, Extent{guest, q.clusterSize})
				continue
			}
			if q.extL2 {
				if d&qcow2ExtL2Reserve != 0 {
					return corruptf("qcow2 L2 entry for guest offset %d has reserved bits set (%#x)", guest, d)
				}
			} else if d&qcow2L2Reserved != 0 {
				return corruptf("qcow2 L2 entry for guest offset %d has reserved bits set (%#x)", guest, d)
			}
			host := int64(d & qcow2OffsetMask)
			if q.extL2 {
				alloc, zeros := uint32(bitmap), uint32(bitmap>>32)
				if alloc&zeros != 0 || (host == 0 && alloc != 0) {
					return corruptf("qcow2 subcluster bitmap %#x for guest offset %d is invalid", bitmap, guest)
				}
				for s := int64(0); s < 32; s++ {
					if alloc&(1<<s) != 0 {
						q.addRun(guest+s*q.subSize, host+s*q.subSize, q.subSize)
					}
				}
				if alloc == 0 {
					host = 0 // preallocated space holding nothing visible
				}
			} else if d&qcow2ZeroFlag != 0 {
				host = 0 // a zero cluster (preallocated or not) reads as zeros
			} else if host != 0 {
				q.addRun(guest, host, q.clusterSize)
			}
			if host == 0 {
				continue
			}
			if host%q.clusterSize != 0 || host >= q.fileSize {
				return corruptf("qcow2 data cluster for guest offset %d at %d is unaligned or past the end of the %d-byte file", guest, host, q.fileSize)
			}
			if used.testAndSet(host >> q.clusterBits) {
				return corruptf("qcow2 data cluster at %d (guest offset %d) is used twice or overlaps metadata", host, guest)
			}
		}
		if keep+q.clusterSize <= qcow2L2CacheBytes {
			q.l2[int64(i)] = t
			keep += q.clusterSize
		}
	}
	for c := range used {
		if used[c]&compressed[c] != 0 {
			return corruptf("qcow2 compressed data shares a host cluster with metadata or an uncompressed cluster")
		}
	}
	slices.Sort(cstarts)
	for i := 1; i < len(cstarts); i++ {
		if cstarts[i] == cstarts[i-1] {
			return corruptf("qcow2 compressed data at %d is used by two clusters", cstarts[i])
		}
	}
	q.ext = normalize(q.ext, q.size)
	return nil
}

func decodeL2(raw []byte) []uint64 {
	t := make([]uint64, len(raw)/8)
	for i := range t {
		t[i] = binary.BigEndian.Uint64(raw[8*i:])
	}
	return t
}

// compressedRange returns the host offset and stored length of a compressed
// cluster descriptor: the offset takes the low 62-(cluster_bits-8) bits, the
// rest counts the 512-byte sectors after the first one.
func (q *qcow2Image) compressedRange(d uint64) (host, n int64) {
	x := 62 - (q.clusterBits - 8)
	host = int64(d & (1<<x - 1))
	sectors := int64(d>>x) & (1<<(q.clusterBits-8) - 1)
	return host, (sectors+1)*512 - host&511
}

// table returns the L2 table of L1 entry i (nil when unallocated).
func (q *qcow2Image) table(i int64) ([]uint64, error) {
	off := int64(q.l1[i] & qcow2OffsetMask)
	if off == 0 {
		return nil, nil
	}
	if t, ok := q.l2[i]; ok {
		return t, nil
	}
	q.mu.Lock()
	t, ok := q.extra[i]
	q.mu.Unlock()
	if ok {
		return t, nil
	}
	raw := make([]byte, q.clusterSize)
	if err := readFull(q.f, raw, off); err != nil {
		return nil, fmt.Errorf("read qcow2 L2 table %d: %w", i, err)
	}
	t = decodeL2(raw)
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.extra == nil || int64(len(q.extra)+1)*q.clusterSize > qcow2L2CacheBytes {
		q.extra = map[int64][]uint64{} // simple and bounded: start over
	}
	q.extra[i] = t
	return t, nil
}

func (q *qcow2Image) Size() int64    { return q.size }
func (q *qcow2Image) Format() Format { return FormatQcow2 }

func (q *qcow2Image) Info() Info {
	comp := "zlib"
	if q.compression == qcow2CompressionZstd {
		comp = "zstd"
	}
	return Info{Format: FormatQcow2, VirtualSize: q.size, BlockSize: q.clusterSize,
		LogicalSectorSize: 512, PhysicalSectorSize: 512, FileSize: q.fileSize,
		FormatVersion: int(q.version), Compression: comp, ExtendedL2: q.extL2}
}

func (q *qcow2Image) identity() ([16]byte, time.Time) { return contentID(q), q.f.modTime() }

// Extents returns the compressed clusters and the standard ones, less the
// parts of them that are holes in the file (preallocated clusters never
// written, as qemu-img create -o preallocation=metadata leaves them).
func (q *qcow2Image) Extents() ([]Extent, error) {
	q.extOnce.Do(func() {
		ext := slices.Clone(q.ext)
		for _, r := range q.runs {
			n := min(r.n, q.fileSize-r.host)
			d, err := q.f.dataRanges(r.host, n)
			if err != nil {
				q.extErr = fmt.Errorf("map allocated ranges of %s: %w", q.f.name(), err)
				return
			}
			for _, e := range d {
				ext = append(ext, Extent{r.guest + e.Offset - r.host, e.Length})
			}
		}
		q.extAll = normalize(ext, q.size)
	})
	return slices.Clone(q.extAll), q.extErr
}

func (q *qcow2Image) Close() error {
	var err error
	q.once.Do(func() { err = q.f.Close() })
	return err
}

// ReadAt reads guest bytes. Safe for concurrent use. Runs of standard
// clusters that are contiguous in the file are read with one call.
func (q *qcow2Image) ReadAt(p []byte, off int64) (int, error) {
	buf, eof := clampRead(p, off, q.size)
	if buf == nil {
		return 0, eof
	}
	done := 0
	for done < len(buf) {
		pos := off + int64(done)
		n, err := q.readRun(buf[done:], pos)
		if err != nil {
			return done, fmt.Errorf("read qcow2 at guest offset %d: %w", pos, err)
		}
		done += n
	}
	return done, eof
}

// readRun fills a prefix of p (guest offset off) and returns its length.
func (q *qcow2Image) readRun(p []byte, off int64) (int, error) {
	r, err := q.lookup(off, int64(len(p)))
	if err != nil {
		return 0, err
	}
	n := r.n
	switch r.kind {
	case runZero:
		zero(p[:n])
		return int(n), nil
	case runCompressed:
		c, err := q.dec.cluster(q, r.host, r.stored)
		if err != nil {
			return 0, err
		}
		copy(p[:n], c[off&(q.clusterSize-1):])
		q.dec.release(c)
		return int(n), nil
	}
	// Extend the run over following units that continue in the file.
	for int64(len(p)) > n {
		next, err := q.lookup(off+n, int64(len(p))-n)
		if err != nil || next.kind != runData || next.host != r.host+n {
			break
		}
		n += next.n
	}
	got, err := q.f.ReadAt(p[:n], r.host)
	if int64(got) < n {
		if err != nil && err != io.EOF {
			return 0, fmt.Errorf("read %s: %w", q.f.name(), err)
		}
		zero(p[got:n]) // the last cluster may end past the end of the file
	}
	return int(n), nil
}

const (
	runZero = iota
	runData
	runCompressed
)

// qrun describes guest bytes: n of them read as zeros, or from host (data),
// or from the compressed cluster stored at host (stored bytes).
type qrun struct {
	kind            int
	host, n, stored int64
}

// lookup describes the guest bytes at off, at most max of them and never
// past the end of the unit (cluster or subcluster) holding off.
func (q *qcow2Image) lookup(off, max int64) (qrun, error) {
	c := off >> q.clusterBits
	in := off & (q.clusterSize - 1)
	r := qrun{kind: runZero, n: min(max, q.clusterSize-in)}
	t, err := q.table(c / q.l2Entries)
	if err != nil || t == nil {
		return r, err
	}
	j := c % q.l2Entries
	d := t[j*q.entryWords]
	if d&qcow2Compressed != 0 {
		r.kind = runCompressed
		r.host, r.stored = q.compressedRange(d)
		return r, nil
	}
	base := int64(d & qcow2OffsetMask)
	if q.extL2 {
		bitmap := t[j*q.entryWords+1]
		r.n = min(r.n, q.subSize-in%q.subSize)
		if bitmap&(1<<(in/q.subSize)) == 0 {
			base = 0
		}
	} else if d&qcow2ZeroFlag != 0 {
		base = 0
	}
	if base != 0 {
		r.kind, r.host = runData, base+in
	}
	return r, nil
}
