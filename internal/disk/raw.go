package disk

import (
	"errors"
	"fmt"
	"io"
	"sync"
)

// rawImage is a plain disk image: byte N of the file is byte N of the disk.
// A fixed VHD is the same thing with a 512-byte footer after the data.
type rawImage struct {
	f      backing
	size   int64
	format Format
	info   Info
	once   sync.Once
}

func openRaw(f backing, fileSize int64) (Image, error) {
	return &rawImage{f: f, size: fileSize, format: FormatRaw, info: Info{
		Format: FormatRaw, VirtualSize: fileSize, LogicalSectorSize: 512,
		PhysicalSectorSize: 512, FileSize: fileSize,
	}}, nil
}

func (r *rawImage) Size() int64    { return r.size }
func (r *rawImage) Format() Format { return r.format }
func (r *rawImage) Info() Info     { return r.info }

func (r *rawImage) ReadAt(p []byte, off int64) (int, error) {
	q, err := clampRead(p, off, r.size)
	if q == nil {
		return 0, err
	}
	n, rerr := r.f.ReadAt(q, off)
	if n < len(q) {
		// A file shorter than its declared size reads as zeros past its end.
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return n, fmt.Errorf("read %s: %w", r.f.name(), rerr)
		}
		zero(q[n:])
	}
	return len(q), err
}

func (r *rawImage) Extents() ([]Extent, error) {
	ext, err := r.f.dataRanges(0, r.size)
	if err != nil {
		return nil, fmt.Errorf("map allocated ranges of %s: %w", r.f.name(), err)
	}
	return normalize(ext, r.size), nil
}

func (r *rawImage) Close() error {
	var err error
	r.once.Do(func() { err = r.f.Close() })
	return err
}
