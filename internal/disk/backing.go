package disk

import (
	"io"
	"os"
	"time"
)

// backing is where an image's bytes live: a file, or (in tests and fuzzing)
// memory.
type backing interface {
	io.ReaderAt
	io.Closer
	// dataRanges returns the parts of [off, off+length) that may hold
	// non-zero bytes (holes of a sparse file are left out).
	dataRanges(off, length int64) ([]Extent, error)
	modTime() time.Time
	name() string
}

type fileBacking struct{ *os.File }

func (f fileBacking) dataRanges(off, length int64) ([]Extent, error) {
	return fileData(f.File, off, length)
}

func (f fileBacking) modTime() time.Time {
	if st, err := f.Stat(); err == nil {
		return st.ModTime()
	}
	return time.Time{}
}

func (f fileBacking) name() string { return f.Name() }
