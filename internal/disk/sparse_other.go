//go:build !linux

package disk

import "os"

// fileData reports the whole range as data: hole detection is only
// implemented on Linux.
func fileData(f *os.File, off, length int64) ([]Extent, error) {
	if length <= 0 {
		return nil, nil
	}
	return []Extent{{off, length}}, nil
}

// startWriteback does nothing off Linux: the final fsync writes everything.
func startWriteback(*os.File, int64, int64) {}

const directAlign = 4096

// openDirect: no O_DIRECT writes off Linux.
func openDirect(*os.File) *os.File { return nil }

func alignedBuffer(n int) ([]byte, func()) { return make([]byte, n), func() {} }
