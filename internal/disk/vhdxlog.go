package disk

import (
	"encoding/binary"
	"fmt"
)

// VHDX log replay, done in memory: the replayed writes are kept in an
// overlay that every later read of the file goes through, so the input file
// is never modified (it may be read-only, or still owned by a builder).

const logSector = 4096

// logOverlay holds the final effect of an active log sequence: 4 KiB
// sectors written, and ranges zeroed (all of which come before any data
// sector that survives in sectors, because a later zero deletes them).
type logOverlay struct {
	sectors map[int64][]byte // file offset (4 KiB aligned) -> 4 KiB
	zeros   []Extent
}

func (o *logOverlay) apply(p []byte, off int64) {
	end := off + int64(len(p))
	for _, z := range o.zeros {
		s, e := max(z.Offset, off), min(z.End(), end)
		if e > s {
			zero(p[s-off : e-off])
		}
	}
	if len(o.sectors) == 0 {
		return
	}
	if int64(len(o.sectors)) < (end-off)/logSector {
		for so, data := range o.sectors {
			o.copySector(p, off, end, so, data)
		}
		return
	}
	for so := off &^ (logSector - 1); so < end; so += logSector {
		if data, ok := o.sectors[so]; ok {
			o.copySector(p, off, end, so, data)
		}
	}
}

// sectorExtents returns the file ranges the log wrote, unsorted.
func (o *logOverlay) sectorExtents() []Extent {
	out := make([]Extent, 0, len(o.sectors))
	for so := range o.sectors {
		out = append(out, Extent{so, logSector})
	}
	return out
}

func (o *logOverlay) copySector(p []byte, off, end, so int64, data []byte) {
	s, e := max(so, off), min(so+logSector, end)
	if e > s {
		copy(p[s-off:e-off], data[s-so:e-so])
	}
}

// logEntry is a validated log entry.
type logEntry struct {
	pos        int64 // offset within the log
	length     int64
	tail       int64
	seq        uint64
	flushedOff uint64
	lastOff    uint64
	raw        []byte
	descCount  int
}

// errLogFix is the advice given whenever a log cannot be replayed.
const errLogFix = "open the disk once in Hyper-V (attach it to a VM or Mount-VHD, then detach) or run `qemu-img check -r all FILE` to replay the log, then retry"

// replayLog finds the active log sequence ([MS-VHDX] 2.3.3) and replays it
// into an in-memory overlay.
func (v *vhdxImage) replayLog() error {
	h := v.hdr
	logOff, logLen := int64(h.LogOffset), int64(h.LogLength)
	if h.LogVersion != 0 {
		return fmt.Errorf("%w: VHDX log version %d; %s", ErrUnsupported, h.LogVersion, errLogFix)
	}
	if logLen == 0 || logLen%(1<<20) != 0 || logOff < 1<<20 || logOff%(1<<20) != 0 || h.LogOffset > uint64(v.realSize) || logOff+logLen > v.realSize {
		return corruptf("VHDX log (%d bytes at %d) is misplaced or outside the file, and the header says it must be replayed; %s", logLen, logOff, errLogFix)
	}
	if logLen > maxLogLength {
		return fmt.Errorf("%w: VHDX log of %d bytes needs replay and is larger than imgpipe replays in memory; %s", ErrUnsupported, logLen, errLogFix)
	}
	logBuf := make([]byte, logLen)
	if err := readFull(v.f, logBuf, logOff); err != nil {
		return fmt.Errorf("read VHDX log: %w", err)
	}
	// readEntry validates the entry at pos, or returns nil.
	readEntry := func(pos int64) *logEntry {
		hdr := circular(logBuf, pos, logSector)
		if string(hdr[:4]) != "loge" {
			return nil
		}
		length := int64(binary.LittleEndian.Uint32(hdr[8:]))
		if length < logSector || length%logSector != 0 || length > logLen {
			return nil
		}
		e := &logEntry{
			pos: pos, length: length,
			tail:       int64(binary.LittleEndian.Uint32(hdr[12:])),
			seq:        binary.LittleEndian.Uint64(hdr[16:]),
			descCount:  int(binary.LittleEndian.Uint32(hdr[24:])),
			flushedOff: binary.LittleEndian.Uint64(hdr[48:]),
			lastOff:    binary.LittleEndian.Uint64(hdr[56:]),
		}
		if e.tail%logSector != 0 || e.tail >= logLen || e.seq == 0 || [16]byte(hdr[32:48]) != h.LogGUID {
			return nil
		}
		if int64(e.descCount) > length/32 {
			return nil
		}
		raw := circular(logBuf, pos, length)
		if crc32cZeroed(raw, 4) != binary.LittleEndian.Uint32(raw[4:]) {
			return nil
		}
		descSectors := (64 + 32*int64(e.descCount) + logSector - 1) / logSector
		dataSectors := int64(0)
		for i := 0; i < e.descCount; i++ {
			d := raw[64+32*i:]
			if binary.LittleEndian.Uint64(d[24:]) != e.seq {
				return nil
			}
			fo := binary.LittleEndian.Uint64(d[16:])
			switch string(d[:4]) {
			case "zero":
				zl := binary.LittleEndian.Uint64(d[8:])
				if zl%logSector != 0 || fo%logSector != 0 || fo > maxVirtualSize*2 || zl > maxVirtualSize*2 {
					return nil
				}
			case "desc":
				if fo%logSector != 0 || fo > maxVirtualSize*2 {
					return nil
				}
				if descSectors+dataSectors >= length/logSector {
					return nil
				}
				ds := raw[(descSectors+dataSectors)*logSector:]
				if string(ds[:4]) != "data" ||
					binary.LittleEndian.Uint32(ds[4:]) != uint32(e.seq>>32) ||
					binary.LittleEndian.Uint32(ds[4092:]) != uint32(e.seq) {
					return nil
				}
				dataSectors++
			default:
				return nil
			}
		}
		if (descSectors+dataSectors)*logSector != length {
			return nil
		}
		e.raw = raw
		return e
	}

	// Find the active sequence.
	var active []*logEntry
	var curTail, oldTail int64
	for steps := int64(0); steps <= logLen/logSector+1; steps++ {
		var seq []*logEntry
		pos := curTail
		for int64(len(seq)) < logLen/logSector {
			e := readEntry(pos)
			if e == nil || (len(seq) > 0 && e.seq != seq[len(seq)-1].seq+1) {
				break
			}
			seq = append(seq, e)
			pos = (pos + e.length) % logLen
		}
		valid := false
		if len(seq) > 0 {
			head := seq[len(seq)-1]
			for i, e := range seq {
				if e.pos == head.tail {
					valid = true
					seq = seq[i:]
					break
				}
			}
			if valid && (active == nil || head.seq > active[len(active)-1].seq) {
				active = seq
			}
		}
		if len(seq) == 0 || !valid {
			curTail = (curTail + logSector) % logLen
		} else {
			curTail = pos
		}
		if curTail < oldTail {
			break
		}
		oldTail = curTail
	}
	if active == nil {
		return corruptf("VHDX log must be replayed (the disk was not closed cleanly) but holds no valid log sequence; %s", errLogFix)
	}
	head := active[len(active)-1]
	if head.flushedOff > uint64(v.realSize) {
		return corruptf("VHDX file is %d bytes but its log says %d were flushed: the file was truncated; restore it from its source", v.realSize, head.flushedOff)
	}
	ov := &logOverlay{sectors: map[int64][]byte{}}
	fileEnd := max(v.realSize, int64(min(head.lastOff, maxVirtualSize*2)))
	for _, e := range active {
		descSectors := (64 + 32*int64(e.descCount) + logSector - 1) / logSector
		dataIdx := int64(0)
		for i := 0; i < e.descCount; i++ {
			d := e.raw[64+32*i:]
			fo := int64(binary.LittleEndian.Uint64(d[16:]))
			if string(d[:4]) == "zero" {
				zl := int64(binary.LittleEndian.Uint64(d[8:]))
				for so := range ov.sectors {
					if so >= fo && so < fo+zl {
						delete(ov.sectors, so)
					}
				}
				ov.zeros = append(ov.zeros, Extent{fo, zl})
				fileEnd = max(fileEnd, fo+zl)
				continue
			}
			ds := e.raw[(descSectors+dataIdx)*logSector:]
			dataIdx++
			sector := make([]byte, logSector)
			copy(sector[:8], d[8:16])        // leading bytes
			copy(sector[8:4092], ds[8:4092]) // data
			copy(sector[4092:], d[4:8])      // trailing bytes
			ov.sectors[fo] = sector
			fileEnd = max(fileEnd, fo+logSector)
		}
	}
	v.ov = ov
	v.logicalSize = fileEnd
	return nil
}

// circular returns n bytes of the ring buffer buf starting at pos, wrapping.
func circular(buf []byte, pos, n int64) []byte {
	l := int64(len(buf))
	pos %= l
	if pos+n <= l {
		return buf[pos : pos+n]
	}
	out := make([]byte, 0, n)
	out = append(out, buf[pos:]...)
	return append(out, buf[:n-(l-pos)]...)
}
