// Package transfer uploads disk images to Azure page blobs and managed disks:
// straight from the source image (VHDX, VHD or raw) through the streaming
// Azure fixed-VHD view of internal/disk, sending only 512-byte sectors that
// hold data, in parallel, resumably, and verifiably.
//
// The pipeline: a planner reads the allocated extents in 4 MiB windows at
// explicit offsets, drops every 512-byte-aligned zero run and hands the
// remaining ranges (at most 4 MiB, one Put Page each) to a bounded pool of
// workers. Every Put Page carries the CRC64 of its body (x-ms-content-crc64),
// which the service checks before it stores the pages, so integrity in
// transit costs O(data), not O(virtual size). Only when asked (Options.MD5)
// does an MD5 goroutine hash the whole virtual VHD in order (holes hashed
// from a zero buffer, no I/O) for the blob's Content-MD5. Each completed
// range is made durable in a checkpoint file before its worker takes the
// next one, so a kill -9 costs at most one range per worker when resuming.
package transfer

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"hash/crc64"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"golang.org/x/sync/errgroup"

	"imgpipe/internal/disk"
	"imgpipe/internal/progress"
)

const (
	sectorSize = 512
	// MaxRange is the largest Put Page the service accepts.
	MaxRange = 4 << 20
	// window is the planning grid: ranges never cross a window boundary,
	// so a window fully recorded as complete can be skipped on resume
	// without reading it.
	window        = MaxRange
	planAlgorithm = "nonzero-sectors/4MiB-windows/v1"
	// DefaultWorkers is the default number of concurrent Put Page calls.
	DefaultWorkers = 8
)

// VerifyMode selects the verification done after an upload.
type VerifyMode string

const (
	VerifyNone    VerifyMode = ""
	VerifySampled VerifyMode = "sampled" // page ranges + a deterministic sample read back
	VerifyFull    VerifyMode = "full"    // page ranges + every data byte read back
)

// Options tune an upload.
type Options struct {
	Workers int // concurrent Put Page calls; DefaultWorkers when 0
	// MD5 hashes the whole virtual VHD (zeros included, so it costs
	// O(virtual size)) and sets it as the blob's Content-MD5, as Add-AzVhd
	// does. Azure stores Content-MD5 on page blobs but never checks it; the
	// per-request CRC64 is what protects the bytes, so this is opt-in.
	MD5 bool
	// Resume continues the upload recorded in the checkpoint.
	Resume bool
	// Overwrite replaces an existing page blob and discards an old checkpoint.
	Overwrite bool
	// Checkpoint is the checkpoint file; SOURCE + CheckpointSuffix when empty.
	Checkpoint string
	Verify     VerifyMode
	// Progress receives (data bytes sent, data bytes to send) for this run.
	Progress progress.Func
	Logger   *slog.Logger
}

// Result summarises an upload.
type Result struct {
	Source         string        `json:"source"`
	Format         string        `json:"format"`
	Target         string        `json:"target"`
	VirtualSize    int64         `json:"virtual_size"`    // bytes of the fixed VHD, footer included
	AllocatedBytes int64         `json:"allocated_bytes"` // bytes the allocation map says may hold data
	DataBytes      int64         `json:"data_bytes"`      // non-zero bytes this run had to send
	BytesSent      int64         `json:"bytes_sent"`      // page bytes acknowledged by the service this run
	ResumedBytes   int64         `json:"resumed_bytes"`   // bytes of the VHD already complete from earlier runs
	Ranges         int64         `json:"ranges"`          // Put Page calls that succeeded
	Retries        int64         `json:"retries"`
	Workers        int           `json:"workers"`
	Resumed        bool          `json:"resumed"`
	MD5            string        `json:"md5,omitempty"` // base64, as in Content-MD5
	MD5Hex         string        `json:"md5_hex,omitempty"`
	MD5Seconds     float64       `json:"md5_seconds,omitempty"`      // time the hasher ran
	MD5WaitSeconds float64       `json:"md5_wait_seconds,omitempty"` // time the upload waited for it after the last page
	Seconds        float64       `json:"duration_seconds"`
	Checkpoint     string        `json:"checkpoint,omitempty"`
	Verify         *VerifyResult `json:"verify,omitempty"`
	Integrity      Integrity     `json:"integrity"`
	Warnings       []string      `json:"warnings,omitempty"`
}

// RequestChecksumCRC64 names the per-request checksum every Put Page carries:
// the CRC64 of the body in x-ms-content-crc64, which the service recomputes
// and refuses (400 Crc64Mismatch) when it differs.
const RequestChecksumCRC64 = "crc64"

// Integrity says what protected and what checked the bytes of an upload,
// for the caller to record (publish keeps it with the version's run).
type Integrity struct {
	// RequestChecksum is the checksum the service checked on every Put Page
	// of this run before storing it (RequestChecksumCRC64).
	RequestChecksum string `json:"request_checksum"`
	// CheckedRanges is the number of Put Page calls the service accepted
	// with a matching checksum in this run (ranges of earlier runs of a
	// resumed upload were checked by those runs).
	CheckedRanges int64 `json:"checked_ranges"`
	// ChecksumRetries counts ranges the service refused because the body it
	// received did not match the checksum (corrupted in transit), and that
	// were sent again.
	ChecksumRetries int64 `json:"checksum_retries"`
	// ContentMD5 is the whole-blob MD5 (base64) set as Content-MD5, only
	// with Options.MD5. Azure stores it but does not check page blobs against it.
	ContentMD5 string `json:"content_md5,omitempty"`
	// Verify is the read-back check that passed after the upload (empty: none).
	Verify VerifyMode `json:"verify,omitempty"`
}

// String is a one-line summary, e.g. "crc64 on 12 Put Page requests, verify=sampled".
func (i Integrity) String() string {
	s := fmt.Sprintf("%s checked by the service on %d Put Page requests", i.RequestChecksum, i.CheckedRanges)
	if i.ChecksumRetries > 0 {
		s += fmt.Sprintf(" (%d resent after a mismatch)", i.ChecksumRetries)
	}
	if i.ContentMD5 != "" {
		s += ", Content-MD5 set"
	}
	if i.Verify != VerifyNone {
		s += ", read back (" + string(i.Verify) + ")"
	}
	return s
}

// Upload sends the image at src to tgt as an Azure fixed VHD.
func Upload(ctx context.Context, src string, tgt Target, o Options) (res *Result, err error) {
	start := time.Now()
	if o.Workers <= 0 {
		o.Workers = DefaultWorkers
	}
	if o.Workers > 256 {
		return nil, fmt.Errorf("--workers %d is too many: use at most 256", o.Workers)
	}
	if o.Verify != VerifyNone && o.Verify != VerifySampled && o.Verify != VerifyFull {
		return nil, fmt.Errorf("verify mode %q: use sampled or full", o.Verify)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	img, err := disk.Open(src)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", src, err)
	}
	defer img.Close()
	vhd := disk.AzureVHD(img)
	size := vhd.Size()
	if size <= 0 || size%sectorSize != 0 {
		return nil, fmt.Errorf("%s: Azure VHD size %d is not a multiple of 512", src, size)
	}
	// Azure's size limits, before a byte is sent: a 64 TiB sparse disk would
	// otherwise upload for hours and be refused at the end.
	limit := disk.UploadPageBlob
	if tgt.Identity().Kind == "disk" {
		limit = disk.UploadManagedDisk
	}
	if err := disk.CheckAzureUploadSize(size, limit); err != nil {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	rawExt, err := vhd.Extents()
	if err != nil {
		return nil, fmt.Errorf("read allocation map of %s: %w", src, err)
	}
	exts := alignExtents(rawExt, size)

	fp, err := fingerprint(src, img, size, exts)
	if err != nil {
		return nil, err
	}
	planFP := PlanFingerprint{Algorithm: planAlgorithm, Window: window, Sector: sectorSize, Extents: extentsHash(exts)}

	cpPath := o.Checkpoint
	if cpPath == "" {
		cpPath = src + CheckpointSuffix
	}
	old, err := loadCheckpoint(cpPath)
	if err != nil && (o.Resume || !o.Overwrite) {
		return nil, err
	}
	var resume *Checkpoint
	switch {
	case o.Resume && old == nil:
		return nil, fmt.Errorf("nothing to resume: no checkpoint at %s (run without --resume to start the upload)", cpPath)
	case o.Resume:
		if err := old.matches(fp, tgt.Identity(), planFP); err != nil {
			return nil, err
		}
		resume = old
	case old != nil && !o.Overwrite:
		return nil, fmt.Errorf("an interrupted upload of %s to %s left a checkpoint at %s: pass --resume to continue it, or --overwrite to start over", src, old.Target, cpPath)
	}

	res = &Result{
		Source: src, Format: string(img.Format()), Target: tgt.Identity().String(),
		VirtualSize: size, Workers: o.Workers, Resumed: resume != nil, Checkpoint: cpPath,
	}
	for _, e := range exts {
		res.AllocatedBytes += e.len()
	}

	pb, marker, err := tgt.Prepare(ctx, size, resume, o.Overwrite)
	defer func() {
		if ferr := tgt.Finish(ctx); ferr != nil {
			err = errors.Join(err, ferr)
		}
		res.Retries = tgt.Stats().Retries()
		res.Seconds = time.Since(start).Seconds()
		if err != nil && tgt.Identity().Kind == "disk" && res.BytesSent > 0 {
			err = fmt.Errorf("%w\n%s now holds a partial upload and its write access was revoked: delete the disk and the checkpoint, then upload again", err, tgt.Identity())
		}
		if err != nil {
			err = scrubErr(err)
		}
	}()
	if err != nil {
		return res, err
	}
	cp := resume
	if cp == nil {
		cp = &Checkpoint{Version: checkpointVersion, Source: fp, Target: tgt.Identity(), Marker: marker, Plan: planFP}
		if err := saveCheckpoint(cpPath, cp); err != nil {
			return res, fmt.Errorf("%w (pass --checkpoint PATH to keep it elsewhere)", err)
		}
	}
	log.Info("upload starting", "source", src, "target", tgt.Identity().String(), "virtual_size", size,
		"allocated", res.AllocatedBytes, "resume", resume != nil, "workers", o.Workers)

	// MD5 beside the upload.
	type hashResult struct {
		sum []byte
		dur time.Duration
		err error
	}
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	hashDone := make(chan hashResult, 1)
	if o.MD5 {
		go func() {
			t0 := time.Now()
			sum, err := hashVHD(hctx, vhd, size, exts)
			hashDone <- hashResult{sum, time.Since(t0), err}
		}()
	}

	tr := newTracker(cp, cpPath)
	u := &uploader{src: vhd, size: size, exts: exts, pb: pb, workers: o.Workers, tr: tr, footer: span{size - sectorSize, size}}
	u.counter = progress.NewCounter(0, o.Progress)
	err = u.run(ctx)
	if ferr := tr.close(); ferr != nil && err == nil {
		err = ferr
	}
	res.DataBytes = u.dataBytes.Load()
	res.BytesSent = u.sent.Load()
	res.Ranges = u.ranges.Load()
	res.ResumedBytes = u.resumed
	res.Integrity = Integrity{RequestChecksum: RequestChecksumCRC64, CheckedRanges: res.Ranges, ChecksumRetries: u.crcRetries.Load()}
	if err != nil {
		return res, err
	}
	uploaded := time.Now()

	if o.MD5 {
		h := <-hashDone
		if h.err != nil {
			return res, fmt.Errorf("compute MD5 of %s: %w", src, h.err)
		}
		res.MD5 = base64.StdEncoding.EncodeToString(h.sum)
		res.MD5Hex = hex.EncodeToString(h.sum)
		res.MD5Seconds = h.dur.Seconds()
		res.MD5WaitSeconds = time.Since(uploaded).Seconds()
		if _, err := pb.SetHTTPHeaders(ctx, blob.HTTPHeaders{BlobContentMD5: h.sum}, nil); err != nil {
			if tgt.Identity().Kind == "disk" {
				res.Warnings = append(res.Warnings, "could not set Content-MD5 on the disk's blob: "+Scrub(err.Error()))
			} else {
				return res, fmt.Errorf("set Content-MD5 on %s: %w", tgt.Identity(), scrubErr(err))
			}
		} else {
			res.Integrity.ContentMD5 = res.MD5
		}
	}
	if o.Verify != VerifyNone {
		v, err := verify(ctx, pb, vhd, size, exts, o.Verify, o.Workers)
		res.Verify = v
		if err != nil {
			return res, err
		}
		res.Integrity.Verify = o.Verify
	}
	if err := os.Remove(cpPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		res.Warnings = append(res.Warnings, "could not remove the checkpoint: "+err.Error())
	}
	res.Checkpoint = ""
	log.Info("upload done", "target", tgt.Identity().String(), "sent", res.BytesSent, "ranges", res.Ranges, "retries", tgt.Stats().Retries())
	return res, nil
}

func (c *Checkpoint) matches(fp SourceFingerprint, id TargetIdentity, plan PlanFingerprint) error {
	switch {
	case c.Source.FileSize != fp.FileSize || !c.Source.ModTime.Equal(fp.ModTime) || c.Source.Content != fp.Content ||
		c.Source.VirtualSize != fp.VirtualSize || c.Source.Format != fp.Format:
		return fmt.Errorf("source changed since the interrupted upload (size, time or content differ from the checkpoint): delete %s and upload again with --overwrite", filepath.Base(fp.Path)+CheckpointSuffix)
	case c.Target != id:
		return fmt.Errorf("%w: the checkpoint was written for %s, not %s", ErrTargetChanged, c.Target, id)
	case c.Plan != plan:
		return fmt.Errorf("the checkpoint was written by a different range plan (%s); start over with --overwrite", c.Plan.Algorithm)
	}
	return nil
}

// alignExtents rounds extents out to whole sectors, clips them to size and
// merges what then touches.
func alignExtents(ext []disk.Extent, size int64) []span {
	var out spanSet
	for _, e := range ext {
		s := e.Offset / sectorSize * sectorSize
		end := (e.Offset + e.Length + sectorSize - 1) / sectorSize * sectorSize
		if s < 0 {
			s = 0
		}
		if end > size {
			end = size
		}
		out.add(span{s, end})
	}
	return out.s
}

func extentsHash(exts []span) string {
	h := sha256.New()
	var b [16]byte
	for _, e := range exts {
		binary.LittleEndian.PutUint64(b[:8], uint64(e.Start))
		binary.LittleEndian.PutUint64(b[8:], uint64(e.End))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// fingerprint identifies the source file cheaply: size, mtime, format and a
// hash of its first and last MiB and its allocation map.
func fingerprint(path string, img disk.Image, vsize int64, exts []span) (SourceFingerprint, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	f, err := os.Open(path)
	if err != nil {
		return SourceFingerprint{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return SourceFingerprint{}, err
	}
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for _, off := range []int64{0, max(0, st.Size()-int64(len(buf)))} {
		n, err := f.ReadAt(buf, off)
		if err != nil && err != io.EOF {
			return SourceFingerprint{}, fmt.Errorf("read %s: %w", path, err)
		}
		h.Write(buf[:n])
	}
	h.Write([]byte(extentsHash(exts)))
	return SourceFingerprint{
		Path: abs, FileSize: st.Size(), ModTime: st.ModTime().UTC(), Format: string(img.Format()),
		VirtualSize: vsize, Content: hex.EncodeToString(h.Sum(nil)),
	}, nil
}

// hashVHD computes the MD5 of the whole virtual VHD in order. Ranges outside
// the extents are zeros and are hashed from a zero buffer without reading.
func hashVHD(ctx context.Context, r io.ReaderAt, size int64, exts []span) ([]byte, error) {
	const chunk = 1 << 20
	h := md5.New()
	zero := make([]byte, chunk)
	buf := make([]byte, chunk)
	var pos int64
	zeros := func(h hash.Hash, to int64) error {
		for pos < to {
			if err := ctx.Err(); err != nil {
				return err
			}
			n := min(int64(chunk), to-pos)
			h.Write(zero[:n])
			pos += n
		}
		return nil
	}
	for _, e := range exts {
		if err := zeros(h, e.Start); err != nil {
			return nil, err
		}
		for pos < e.End {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			n := min(int64(chunk), e.End-pos)
			if err := readFull(r, buf[:n], pos); err != nil {
				return nil, err
			}
			h.Write(buf[:n])
			pos += n
		}
	}
	if err := zeros(h, size); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

func readFull(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("read %d bytes at offset %d: %w", len(p), off, err)
}

// ---- planning and sending ----

// winBuf is one window's data, shared by the ranges cut from it.
type winBuf struct {
	buf  []byte
	refs atomic.Int32
	pool chan []byte
}

func (w *winBuf) release() {
	if w.refs.Add(-1) == 0 {
		w.pool <- w.buf
	}
}

// item is one Put Page: data at off, plus the span of the VHD it accounts
// for in the checkpoint (the data and the zeros before it in its window).
type item struct {
	off   int64
	data  []byte
	cover span
	win   *winBuf
}

type uploader struct {
	src     io.ReaderAt
	size    int64
	exts    []span
	pb      PageBlob
	workers int
	tr      *tracker
	counter *progress.Counter
	footer  span

	dataBytes  atomic.Int64
	sent       atomic.Int64
	ranges     atomic.Int64
	crcRetries atomic.Int64
	resumed    int64
}

// windows calls fn for every planning window: each extent cut at the 4 MiB grid.
func windows(exts []span, fn func(w span) error) error {
	for _, e := range exts {
		for w0 := e.Start; w0 < e.End; {
			w1 := min(e.End, (w0/window+1)*window)
			if err := fn(span{w0, w1}); err != nil {
				return err
			}
			w0 = w1
		}
	}
	return nil
}

// nonZeroRuns returns the runs of sectors of p (which starts at base) that
// are not all zero, as absolute spans.
func nonZeroRuns(p []byte, base int64, out []span) []span {
	var zero [sectorSize]byte
	runStart := int64(-1)
	for i := 0; i < len(p); i += sectorSize {
		end := min(i+sectorSize, len(p))
		isZero := bytes.Equal(p[i:end], zero[:end-i])
		switch {
		case !isZero && runStart < 0:
			runStart = int64(i)
		case isZero && runStart >= 0:
			out = append(out, span{base + runStart, base + int64(i)})
			runStart = -1
		}
	}
	if runStart >= 0 {
		out = append(out, span{base + runStart, base + int64(len(p))})
	}
	return out
}

func (u *uploader) run(ctx context.Context) error {
	done := u.tr.snapshotSet()
	// The footer window is always sent again: it is tiny, and a resumed
	// upload must end with this run's footer.
	skip := func(w span) bool { return done.contains(w) && w.End != u.size }
	var total int64
	_ = windows(u.exts, func(w span) error {
		if skip(w) {
			u.resumed += w.len()
		} else {
			total += w.len()
		}
		return nil
	})
	u.counter.SetTotal(total)
	var toSend atomic.Int64
	toSend.Store(total)

	g, ctx := errgroup.WithContext(ctx)
	items := make(chan item, u.workers)
	pool := make(chan []byte, u.workers+2)
	for range u.workers + 2 {
		pool <- make([]byte, window)
	}
	g.Go(func() error {
		defer close(items)
		var runs []span
		// The space between extents is zero by definition. It is recorded
		// as done as the planner passes it, so the checkpoint's completed
		// list stays a prefix plus the ranges still in flight.
		var passed int64
		err := windows(u.exts, func(w span) error {
			if w.Start > passed {
				if err := u.tr.markDone(span{passed, w.Start}); err != nil {
					return err
				}
			}
			passed = w.End
			if skip(w) {
				return nil
			}
			var buf []byte
			select {
			case buf = <-pool:
			case <-ctx.Done():
				return ctx.Err()
			}
			p := buf[:w.len()]
			if err := readFull(u.src, p, w.Start); err != nil {
				pool <- buf
				return fmt.Errorf("read source: %w", err)
			}
			runs = nonZeroRuns(p, w.Start, runs[:0])
			var data int64
			for _, r := range runs {
				data += r.len()
			}
			u.dataBytes.Add(data)
			u.counter.SetTotal(toSend.Add(data - w.len()))
			if len(runs) == 0 {
				pool <- buf
				return u.tr.markDone(w)
			}
			wb := &winBuf{buf: buf, pool: pool}
			wb.refs.Store(int32(len(runs)))
			cur := w.Start
			for i, r := range runs {
				c := span{cur, r.End}
				if i == len(runs)-1 {
					c.End = w.End
				}
				cur = r.End
				it := item{off: r.Start, data: p[r.Start-w.Start : r.End-w.Start], cover: c, win: wb}
				select {
				case items <- it:
				case <-ctx.Done():
					// release what will never be sent
					for range len(runs) - i {
						wb.release()
					}
					return ctx.Err()
				}
			}
			return nil
		})
		if err == nil && passed < u.size {
			err = u.tr.markDone(span{passed, u.size})
		}
		return err
	})
	for range u.workers {
		g.Go(func() error {
			for it := range items {
				if ctx.Err() != nil {
					it.win.release()
					continue
				}
				n := int64(len(it.data))
				err := u.putPages(ctx, it.off, it.data)
				it.win.release()
				if err != nil {
					return fmt.Errorf("put pages [%d, %d): %w", it.off, it.off+n, scrubErr(err))
				}
				u.sent.Add(n)
				u.ranges.Add(1)
				u.counter.Add(n)
				if err := u.tr.complete(ctx, it.cover); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return g.Wait()
}

// crcTable is the CRC64 polynomial of x-ms-content-crc64 (the one azblob
// and the service use).
var crcTable = crc64.MakeTable(0x9A6C9329AC4BC9B5)

// maxChecksumResends bounds how often one range is sent again after the
// service found that the body it received does not match its checksum.
const maxChecksumResends = 3

// putPages sends one range with its CRC64. The service recomputes it and
// refuses a body that differs (400 Crc64Mismatch): that range was damaged
// in transit and is sent again, a few times at most. The CRC64 the service
// reports for what it stored must match too.
func (u *uploader) putPages(ctx context.Context, off int64, data []byte) error {
	crc := crc64.Checksum(data, crcTable)
	var want [8]byte
	binary.LittleEndian.PutUint64(want[:], crc)
	for attempt := 0; ; attempt++ {
		resp, err := u.pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(data)),
			blob.HTTPRange{Offset: off, Count: int64(len(data))},
			&pageblob.UploadPagesOptions{TransactionalValidation: blob.TransferValidationTypeCRC64(crc)})
		if err != nil && bloberror.HasCode(err, codeCrc64Mismatch, codeMd5Mismatch) && attempt < maxChecksumResends {
			u.crcRetries.Add(1)
			continue
		}
		if err != nil {
			if bloberror.HasCode(err, codeCrc64Mismatch, codeMd5Mismatch) {
				return fmt.Errorf("the service received a different body than was sent %d times (checksum mismatch): check the network path (proxies, TLS inspection): %w", attempt+1, err)
			}
			return err
		}
		if len(resp.ContentCRC64) == 8 && !bytes.Equal(resp.ContentCRC64, want[:]) {
			return fmt.Errorf("the service stored pages whose CRC64 %x differs from the %x sent", resp.ContentCRC64, want)
		}
		return nil
	}
}

// Error codes of the Blob service for a transactional checksum that does not
// match the body (Blob service error codes, learn.microsoft.com/rest/api/storageservices/blob-service-error-codes).
const (
	codeCrc64Mismatch bloberror.Code = "Crc64Mismatch"
	codeMd5Mismatch   bloberror.Code = "Md5Mismatch"
)

// ---- checkpoint tracker (group commit) ----

// tracker records completed spans and makes them durable. complete blocks
// until the span is in the checkpoint file, so a worker never has more than
// one finished-but-unrecorded range.
type tracker struct {
	path string
	cp   *Checkpoint

	mu        sync.Mutex
	cond      *sync.Cond
	done      spanSet
	gen       uint64 // changes recorded
	persisted uint64 // changes on disk
	writing   bool
	err       error
}

func newTracker(cp *Checkpoint, path string) *tracker {
	t := &tracker{path: path, cp: cp}
	t.cond = sync.NewCond(&t.mu)
	t.done = *cp.completedSet()
	return t
}

func (t *tracker) snapshotSet() *spanSet {
	t.mu.Lock()
	defer t.mu.Unlock()
	return &spanSet{s: t.done.clone()}
}

// markDone records a span that needs no data (all zeros); it does not wait.
func (t *tracker) markDone(s span) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done.add(s)
	t.gen++
	return t.err
}

// complete records s and returns once it is durable.
func (t *tracker) complete(ctx context.Context, s span) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done.add(s)
	t.gen++
	want := t.gen
	for t.persisted < want && t.err == nil {
		if !t.writing {
			// This goroutine becomes the writer for everything recorded so far.
			t.flushLocked()
			continue
		}
		t.cond.Wait()
	}
	return t.err
}

// flushLocked writes the current state; called with mu held, releases it
// during the write.
func (t *tracker) flushLocked() {
	t.writing = true
	g := t.gen
	spans := t.done.clone()
	t.mu.Unlock()
	cp := *t.cp
	cp.setCompleted(spans)
	err := saveCheckpoint(t.path, &cp)
	t.mu.Lock()
	t.writing = false
	if err != nil && t.err == nil {
		t.err = err
	}
	if g > t.persisted {
		t.persisted = g
	}
	t.cond.Broadcast()
}

// close writes the final state.
func (t *tracker) close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for t.writing {
		t.cond.Wait()
	}
	if t.persisted < t.gen && t.err == nil {
		t.flushLocked()
	}
	return t.err
}
