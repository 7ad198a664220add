package transfer

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"sync/atomic"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"golang.org/x/sync/errgroup"
)

// VerifyResult reports what verification checked.
type VerifyResult struct {
	Mode          VerifyMode `json:"mode"`
	PageRanges    int        `json:"page_ranges"`    // merged ranges the service reports
	ExpectedBytes int64      `json:"expected_bytes"` // non-zero bytes of the source
	ReadBack      int64      `json:"read_back_bytes"`
	Samples       int        `json:"samples"`
}

// ErrVerify marks a target whose content differs from the source.
var ErrVerify = fmt.Errorf("verification failed")

// verify compares the target with the source: Get Page Ranges must report
// exactly the source's non-zero sectors, and the data read back (a sample,
// or all of it) must equal the source.
func verify(ctx context.Context, pb PageBlob, src io.ReaderAt, size int64, exts []span, mode VerifyMode, workers int) (*VerifyResult, error) {
	res := &VerifyResult{Mode: mode}
	var want spanSet
	buf := make([]byte, window)
	var runs []span
	err := windows(exts, func(w span) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := buf[:w.len()]
		if err := readFull(src, p, w.Start); err != nil {
			return fmt.Errorf("read source: %w", err)
		}
		runs = nonZeroRuns(p, w.Start, runs[:0])
		for _, r := range runs {
			want.add(r)
		}
		return nil
	})
	if err != nil {
		return res, err
	}
	res.ExpectedBytes = want.total()

	var got spanSet
	pager := pb.NewGetPageRangesPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return res, fmt.Errorf("get page ranges: %w", scrubErr(err))
		}
		for _, r := range page.PageRange {
			if r.Start != nil && r.End != nil {
				got.add(span{*r.Start, *r.End + 1})
			}
		}
	}
	res.PageRanges = len(got.s)
	if !got.equal(&want) {
		return res, fmt.Errorf("%w: the target holds %d bytes in %d page ranges, the source has %d non-zero bytes in %d ranges%s",
			ErrVerify, got.total(), len(got.s), want.total(), len(want.s), firstDiff(&got, &want))
	}

	// What to read back.
	var checks []span
	switch mode {
	case VerifyFull:
		for _, s := range want.s {
			for o := s.Start; o < s.End; o += MaxRange {
				checks = append(checks, span{o, min(s.End, o+MaxRange)})
			}
		}
	default:
		checks = sampleSpans(&want, size)
	}
	res.Samples = len(checks)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(max(1, workers))
	var readBack atomic.Int64
	for _, c := range checks {
		g.Go(func() error {
			n := c.len()
			exp := make([]byte, n)
			if err := readFull(src, exp, c.Start); err != nil {
				return fmt.Errorf("read source: %w", err)
			}
			resp, err := pb.DownloadStream(gctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: c.Start, Count: n}})
			if err != nil {
				return fmt.Errorf("read back [%d, %d): %w", c.Start, c.End, scrubErr(err))
			}
			body := resp.Body
			gotb, err := io.ReadAll(io.LimitReader(body, n+1))
			body.Close()
			if err != nil {
				return fmt.Errorf("read back [%d, %d): %w", c.Start, c.End, scrubErr(err))
			}
			if !bytes.Equal(gotb, exp) {
				return fmt.Errorf("%w: bytes [%d, %d) on the target differ from the source", ErrVerify, c.Start, c.End)
			}
			readBack.Add(n)
			return nil
		})
	}
	err = g.Wait()
	res.ReadBack = readBack.Load()
	return res, err
}

// sampleSpans picks a deterministic sample: up to 48 pieces of data (at most
// 1 MiB each), the first and last sector of the disk, and a few pieces of
// the zero space.
func sampleSpans(want *spanSet, size int64) []span {
	rng := rand.New(rand.NewPCG(uint64(size), uint64(len(want.s))))
	out := []span{{0, min(size, 64<<10)}, {size - sectorSize, size}}
	if len(want.s) > 0 {
		for range 48 {
			s := want.s[rng.IntN(len(want.s))]
			secs := s.len() / sectorSize
			start := s.Start + rng.Int64N(secs)*sectorSize
			out = append(out, span{start, min(s.End, start+1<<20)})
		}
	}
	for range 8 {
		start := rng.Int64N(size/sectorSize) * sectorSize
		out = append(out, span{start, min(size, start+64<<10)})
	}
	return out
}

func firstDiff(a, b *spanSet) string {
	for i := range min(len(a.s), len(b.s)) {
		if a.s[i] != b.s[i] {
			return fmt.Sprintf(" (first difference: target [%d, %d), source [%d, %d))", a.s[i].Start, a.s[i].End, b.s[i].Start, b.s[i].End)
		}
	}
	return ""
}
