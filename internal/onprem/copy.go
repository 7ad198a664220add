package onprem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"os"

	"imgpipe/internal/progress"
)

const (
	chunkSize = 1 << 20 // bytes read per ReadAt: bounds memory
	blockSize = 4096    // granularity at which zero blocks become holes
)

var zeroChunk = make([]byte, chunkSize)

// span is a byte range [off, end) of the source.
type span struct{ off, end int64 }

// nextData returns the next range at or after off that may hold data. For an
// *os.File on a file system that reports holes (SEEK_DATA/SEEK_HOLE), holes
// are skipped without being read; otherwise everything is "data" and zero
// blocks are found by looking at them.
func nextData(src io.ReaderAt, off, size int64) (span, bool) {
	if off >= size {
		return span{}, false
	}
	if f, ok := src.(*os.File); ok {
		if s, ok, err := seekData(f, off, size); err == nil {
			return s, ok
		}
	}
	return span{off, size}, true
}

// sparseCopy streams size bytes of src into dst (when dst is not nil),
// hashing every byte with SHA-256, leaving holes in dst where src has holes
// or all-zero blocks, and reading at explicit offsets so a short read can
// never shift data. dst must be empty; its final size is set to size.
// It returns the hex SHA-256. onRead, when not nil, is called before each
// read with its offset (a test seam).
func sparseCopy(ctx context.Context, dst *os.File, src io.ReaderAt, size int64, fn progress.Func, onRead func(off int64)) (string, error) {
	h := sha256.New()
	c := progress.NewCounter(size, fn)
	buf := make([]byte, chunkSize)
	var pos int64
	for pos < size {
		s, ok := nextData(src, pos, size)
		if !ok {
			s = span{size, size}
		}
		if err := hashZeros(ctx, h, s.off-pos, c); err != nil {
			return "", err
		}
		for off := s.off; off < s.end; {
			if err := ctx.Err(); err != nil {
				return "", err
			}
			n := int(min(int64(chunkSize), s.end-off))
			if onRead != nil {
				onRead(off)
			}
			m, err := src.ReadAt(buf[:n], off)
			if m < n {
				if err == nil || err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return "", fmt.Errorf("read source at offset %d: %w", off, err)
			}
			h.Write(buf[:n])
			if dst != nil {
				if err := writeNonZero(dst, buf[:n], off); err != nil {
					return "", err
				}
			}
			off += int64(n)
			c.Add(int64(n))
		}
		pos = s.end
	}
	if dst != nil {
		if err := dst.Truncate(size); err != nil {
			return "", fmt.Errorf("set size of %s: %w", dst.Name(), err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashZeros feeds n zero bytes to h (a hole in the source).
func hashZeros(ctx context.Context, h hash.Hash, n int64, c *progress.Counter) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(n, int64(chunkSize))
		h.Write(zeroChunk[:k])
		c.Add(k)
		n -= k
	}
	return nil
}

// writeNonZero writes the non-zero blocks of b at offset off, coalescing
// adjacent ones, and skips all-zero blocks so they stay holes in dst.
func writeNonZero(dst *os.File, b []byte, off int64) error {
	start := -1
	flush := func(end int) error {
		if start < 0 {
			return nil
		}
		_, err := dst.WriteAt(b[start:end], off+int64(start))
		start = -1
		if err != nil {
			return fmt.Errorf("write %s: %w", dst.Name(), err)
		}
		return nil
	}
	for i := 0; i < len(b); i += blockSize {
		j := min(i+blockSize, len(b))
		if bytes.Equal(b[i:j], zeroChunk[:j-i]) {
			if err := flush(i); err != nil {
				return err
			}
			continue
		}
		if start < 0 {
			start = i
		}
	}
	return flush(len(b))
}

// hashFile computes the SHA-256 and size of the file at path, skipping the
// reading of holes.
func hashFile(ctx context.Context, path string, fn progress.Func) (sum string, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return hashOpen(ctx, f, fn, nil)
}

// hashOpen is hashFile of an open regular file.
func hashOpen(ctx context.Context, f *os.File, fn progress.Func, onRead func(int64)) (sum string, size int64, err error) {
	st, err := f.Stat()
	if err != nil {
		return "", 0, err
	}
	if !st.Mode().IsRegular() {
		return "", 0, fmt.Errorf("%s is not a regular file", f.Name())
	}
	sum, err = sparseCopy(ctx, nil, f, st.Size(), fn, onRead)
	return sum, st.Size(), err
}
