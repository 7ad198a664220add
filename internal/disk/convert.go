package disk

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"sync"
	"time"

	"imgpipe/internal/progress"
)

// ConvertOptions controls Convert.
type ConvertOptions struct {
	// To is the output format: FormatRaw, FormatVHDFixed (Azure-ready: size
	// rounded up to a whole MiB) or FormatVHDX (dynamic).
	To Format
	// Overwrite allows replacing an existing output file.
	Overwrite bool
	// Progress receives bytes of the source allocation map processed so far.
	Progress progress.Func
	// BlockSize of a VHDX output (default 32 MiB, Hyper-V's default).
	BlockSize int64
	// Workers reading and writing in parallel (default 4).
	Workers int
}

// ConvertResult describes a finished conversion.
type ConvertResult struct {
	Format      Format `json:"format"`
	VirtualSize int64  `json:"virtual_size"`
	FileSize    int64  `json:"file_size"`
	// DataBytes is the number of non-zero bytes written (the rest are holes).
	DataBytes int64 `json:"data_bytes"`
	// RemovedPartial names the files an earlier, killed conversion to the
	// same output left behind, which this one removed.
	RemovedPartial []string `json:"removed_partial,omitempty"`
}

// granule is the unit of zero detection: runs of zero granules inside
// allocated ranges are not written, so they stay holes in the output.
const granule = 4096

// chunkSize is the unit of work of one reader.
const chunkSize = 4 << 20

// ConvertFile converts the image at in into a new file at out.
func ConvertFile(ctx context.Context, in, out string, opt ConvertOptions) (*ConvertResult, error) {
	if ist, err := os.Stat(in); err == nil {
		if ost, err := os.Stat(out); err == nil && os.SameFile(ist, ost) {
			return nil, fmt.Errorf("input and output are the same file (%s): choose another output name", out)
		}
	}
	src, err := Open(in)
	if err != nil {
		return nil, err
	}
	defer src.Close()
	return Convert(ctx, src, out, opt)
}

// Convert writes src to a new file at path in the format opt.To. The file is
// written sparsely (only ranges holding non-zero data are written; the rest
// stays holes) under a temporary name (".NAME.imgpipe-partial-*", locked
// while written) and moved into place only when complete and synced, so a
// failure or cancellation leaves nothing behind; what a killed conversion
// left is removed by the next conversion to the same path.
// Memory use is bounded by Workers x 4 MiB plus the allocation map.
func Convert(ctx context.Context, src Image, path string, opt ConvertOptions) (*ConvertResult, error) {
	if !opt.Overwrite {
		if _, err := os.Lstat(path); err == nil {
			return nil, fmt.Errorf("%s already exists: choose another name or allow overwriting (--force)", path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	workers := opt.Workers
	if workers <= 0 {
		workers = 4
	}
	var (
		view Image
		lay  layout
	)
	switch opt.To {
	case FormatRaw:
		view, lay = src, identityLayout(src.Size())
	case FormatVHDFixed:
		if d, ok := src.(Describer); ok && d.Info().LogicalSectorSize == 4096 {
			return nil, fmt.Errorf("%w: the source uses 4096-byte logical sectors and a VHD has 512-byte ones, so its partition table would be misread: rebuild the image with 512-byte logical sectors (for Hyper-V: New-VHD -LogicalSectorSizeBytes 512)", ErrUnsupported)
		}
		view = AzureVHD(nopClose{src})
		lay = identityLayout(view.Size())
	case FormatVHDX:
		bs := opt.BlockSize
		if bs == 0 {
			bs = 32 << 20
		}
		if bs < 1<<20 || bs > 256<<20 || bs&(bs-1) != 0 {
			return nil, fmt.Errorf("VHDX block size %d: use a power of two from 1 MiB to 256 MiB", bs)
		}
		w, err := newVHDXLayout(src, bs)
		if err != nil {
			return nil, err
		}
		view, lay = src, w
	default:
		return nil, fmt.Errorf("cannot write format %q: use raw, vhd-fixed or vhdx", opt.To)
	}
	ext, err := view.Extents()
	if err != nil {
		return nil, fmt.Errorf("read the allocation map: %w", err)
	}
	f, removed, err := createPartial(path, 0o644)
	if err != nil {
		return nil, err
	}
	defer f.abort()
	counter := progress.NewCounter(AllocatedBytes(ext), opt.Progress)
	written, err := copySparse(ctx, view, f.File, ext, lay, workers, counter)
	if err != nil {
		return nil, err
	}
	size, err := lay.finish(f.File)
	if err != nil {
		return nil, fmt.Errorf("finish %s: %w", path, err)
	}
	if err := f.Truncate(size); err != nil {
		return nil, fmt.Errorf("size %s: %w", path, err)
	}
	if err := f.commit(); err != nil {
		return nil, err
	}
	vs := view.Size()
	if opt.To == FormatVHDFixed {
		vs -= footerSize
	}
	if w, ok := lay.(*vhdxLayout); ok {
		vs = w.size
	}
	return &ConvertResult{Format: opt.To, VirtualSize: vs, FileSize: size, DataBytes: written, RemovedPartial: removed}, nil
}

// layout maps virtual offsets of the view to offsets in the output file.
type layout interface {
	// boundary is the largest aligned unit a chunk may span (a chunk never
	// crosses a multiple of it).
	boundary() int64
	// place returns the output offset of virtual offset off, allocating
	// space when needed. Called concurrently.
	place(off int64) (int64, error)
	// finish writes the structures that follow the data and returns the
	// final file size.
	finish(f *os.File) (int64, error)
}

type identityLayout int64

func (identityLayout) boundary() int64                  { return chunkSize }
func (identityLayout) place(off int64) (int64, error)   { return off, nil }
func (l identityLayout) finish(*os.File) (int64, error) { return int64(l), nil }

type nopClose struct{ Image }

func (nopClose) Close() error { return nil }

// identity passes the wrapped image's identity through to AzureVHD.
func (n nopClose) identity() ([16]byte, time.Time) {
	if ider, ok := n.Image.(identifier); ok {
		return ider.identity()
	}
	return contentID(n.Image), time.Time{}
}

type chunk struct{ off, length int64 }

// output is where copySparse writes: the file, and (on Linux, where the
// file system allows) a second, O_DIRECT descriptor of it for the aligned
// parts of each run, which is most of the data.
type output struct {
	f      *os.File
	direct *os.File
}

func (o output) write(b []byte, off int64, aligned bool) error {
	if o.direct != nil && aligned && off%directAlign == 0 {
		n := len(b) &^ (directAlign - 1)
		if n > 0 {
			if _, err := o.direct.WriteAt(b[:n], off); err != nil {
				return fmt.Errorf("write output: %w", err)
			}
			b, off = b[n:], off+int64(n)
		}
	}
	if len(b) == 0 {
		return nil
	}
	if _, err := o.f.WriteAt(b, off); err != nil {
		return fmt.Errorf("write output: %w", err)
	}
	startWriteback(o.f, off, int64(len(b)))
	return nil
}

// copySparse reads the extents of view with workers goroutines and writes
// the non-zero granules to out at the offsets lay gives.
func copySparse(ctx context.Context, view Image, f *os.File, ext []Extent, lay layout, workers int, counter *progress.Counter) (int64, error) {
	out := output{f: f, direct: openDirect(f)}
	if out.direct != nil {
		defer out.direct.Close()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	chunks := make(chan chunk, workers*2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var written int64
	bound := min(lay.boundary(), chunkSize)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Page-aligned, with room to place a chunk at its offset's
			// alignment, so that runs starting on a 4 KiB boundary of the
			// disk start on one in memory too (O_DIRECT needs both).
			mem, release := alignedBuffer(chunkSize + directAlign)
			defer release()
			var mine int64
			defer func() { mu.Lock(); written += mine; mu.Unlock() }()
			for c := range chunks {
				if ctx.Err() != nil {
					continue
				}
				skew := c.off % directAlign
				n, err := copyChunk(view, out, lay, mem[skew:skew+c.length], c.off)
				if err != nil {
					cancel(err)
					continue
				}
				mine += n
				counter.Add(c.length)
			}
		}()
	}
feed:
	for _, e := range ext {
		for off := e.Offset; off < e.End(); {
			next := min(e.End(), (off/bound+1)*bound)
			select {
			case chunks <- chunk{off, next - off}:
			case <-ctx.Done():
				break feed
			}
			off = next
		}
	}
	close(chunks)
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return 0, err
	}
	runtime.KeepAlive(f)
	return written, nil
}

// copyChunk reads buf's worth of view at off and writes its non-zero runs
// of 4 KiB granules (aligned to the disk) where lay places them. buf sits
// in memory at off's 4 KiB alignment.
func copyChunk(view Image, out output, lay layout, buf []byte, off int64) (int64, error) {
	n, err := view.ReadAt(buf, off)
	if n < len(buf) {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return 0, fmt.Errorf("read source at %d: %w", off, err)
	}
	var written int64
	// Walk granules aligned to absolute offsets.
	pos := 0
	for pos < len(buf) {
		g := int(min(int64(len(buf)-pos), granule-(off+int64(pos))%granule))
		if isZero(buf[pos : pos+g]) {
			pos += g
			continue
		}
		start := pos
		pos += g
		for pos < len(buf) {
			g = min(len(buf)-pos, granule)
			if isZero(buf[pos : pos+g]) {
				break
			}
			pos += g
		}
		dst, err := lay.place(off + int64(start))
		if err != nil {
			return written, err
		}
		if err := out.write(buf[start:pos], dst, (off+int64(start))%directAlign == 0); err != nil {
			return written, err
		}
		written += int64(pos - start)
	}
	return written, nil
}
