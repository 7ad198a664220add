//go:build linux

package disk

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// fileData returns the ranges of f within [off, off+length) that hold data
// according to the file system (SEEK_DATA / SEEK_HOLE). Holes read as zeros,
// so only these ranges need reading. File systems without hole support
// report the whole range.
func fileData(f *os.File, off, length int64) ([]Extent, error) {
	if length <= 0 {
		return nil, nil
	}
	end := off + length
	fd := int(f.Fd())
	var out []Extent
	pos := off
	for pos < end {
		d, err := unix.Seek(fd, pos, unix.SEEK_DATA)
		if err != nil {
			if errors.Is(err, unix.ENXIO) { // no data after pos
				break
			}
			if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
				return []Extent{{off, length}}, nil
			}
			return nil, err
		}
		if d >= end {
			break
		}
		h, err := unix.Seek(fd, d, unix.SEEK_HOLE)
		if err != nil {
			return nil, err
		}
		if h > end {
			h = end
		}
		out = append(out, Extent{d, h - d})
		pos = h
	}
	return out, nil
}

// startWriteback asks the kernel to start writing [off, off+n) of f to
// disk now, without waiting, so that the fsync at the end of a conversion
// finds little left to do and write-back overlaps with reading.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// directAlign is the alignment of O_DIRECT writes: offset, length and
// memory (4 KiB covers 512-byte and 4 KiB sector devices).
const directAlign = 4096

// openDirect opens a second descriptor of f for O_DIRECT writes, which go
// from imgpipe's buffer to the device without a copy into the page cache
// and without the write-back the final fsync would otherwise wait for (on a
// busy machine buffered write + fsync of 1 GiB took 10 s, direct 1.6 s).
// It returns nil where the file system refuses O_DIRECT (tmpfs).
func openDirect(f *os.File) *os.File {
	d, err := os.OpenFile(f.Name(), os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return d
}

// alignedBuffer returns n bytes of page-aligned memory (a private
// anonymous mapping), as O_DIRECT needs; release frees it.
func alignedBuffer(n int) (buf []byte, release func()) {
	b, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err != nil {
		return make([]byte, n), func() {}
	}
	return b, func() { _ = unix.Munmap(b) }
}
