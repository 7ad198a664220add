package disk

import (
	"bytes"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// decompressors inflate qcow2 compressed clusters. "zlib" clusters are raw
// deflate streams (no zlib header); zstd clusters are zstd frames. A stored
// compressed range is rounded to 512-byte sectors, so it may end with the
// start of the next cluster's data: exactly one cluster is decoded and the
// rest is ignored. Decoders and buffers are pooled: ReadAt runs
// concurrently.
type decompressors struct {
	kind        uint8
	clusterSize int64
	inPool      sync.Pool // *[]byte, compressed input
	outPool     sync.Pool // *[]byte, one cluster
	flatePool   sync.Pool // io.ReadCloser that is also a flate.Resetter
	zstdPool    sync.Pool // *zstd.Decoder
}

func newDecompressors(kind uint8, clusterSize int64) *decompressors {
	return &decompressors{kind: kind, clusterSize: clusterSize}
}

func (d *decompressors) buffer(pool *sync.Pool, n int64) *[]byte {
	if b, ok := pool.Get().(*[]byte); ok && int64(cap(*b)) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n)
	return &b
}

// cluster returns the decoded cluster stored at host (n bytes, the stored
// length); give the slice back with release.
func (d *decompressors) cluster(q *qcow2Image, host, n int64) ([]byte, error) {
	n = min(n, q.fileSize-host)
	if host <= 0 || n <= 0 {
		// checked at open; a table re-read later from a file that changed may say anything
		return nil, corruptf("qcow2 compressed cluster at %d is outside the %d-byte file", host, q.fileSize)
	}
	in := d.buffer(&d.inPool, n)
	defer d.inPool.Put(in)
	got, err := q.f.ReadAt(*in, host)
	if got == 0 && err != nil {
		return nil, fmt.Errorf("read compressed cluster at %d: %w", host, err)
	}
	src := bytes.NewReader((*in)[:got])
	out := d.buffer(&d.outPool, d.clusterSize)
	var r io.Reader
	switch d.kind {
	case qcow2CompressionZstd:
		z, _ := d.zstdPool.Get().(*zstd.Decoder)
		if z == nil {
			z, err = zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(uint64(max(d.clusterSize, 1<<20))), zstd.WithDecoderMaxMemory(uint64(4*d.clusterSize)))
			if err != nil {
				return nil, err
			}
		}
		if err := z.Reset(src); err != nil {
			return nil, corruptf("qcow2 zstd cluster at %d: %v", host, err)
		}
		defer d.zstdPool.Put(z)
		r = z
	default:
		f, _ := d.flatePool.Get().(io.ReadCloser)
		if f == nil {
			f = flate.NewReader(src)
		} else if err := f.(flate.Resetter).Reset(src, nil); err != nil {
			return nil, err
		}
		defer d.flatePool.Put(f)
		r = f
	}
	if _, err := io.ReadFull(r, *out); err != nil {
		d.outPool.Put(out)
		return nil, corruptf("qcow2 compressed cluster at %d does not inflate to %d bytes: %v", host, d.clusterSize, err)
	}
	return *out, nil
}

func (d *decompressors) release(b []byte) { d.outPool.Put(&b) }
