package onprem

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// seekData asks the file system where the next data range at or after off
// is. ok is false when only a hole remains. An error means the file system
// cannot tell; the caller then reads everything.
func seekData(f *os.File, off, size int64) (span, bool, error) {
	start, err := f.Seek(off, unix.SEEK_DATA)
	if err != nil {
		if errors.Is(err, syscall.ENXIO) {
			return span{}, false, nil
		}
		return span{}, false, err
	}
	if start >= size {
		return span{}, false, nil
	}
	end, err := f.Seek(start, unix.SEEK_HOLE)
	if err != nil {
		return span{}, false, err
	}
	return span{start, min(end, size)}, true, nil
}
