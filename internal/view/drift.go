package view

// baseline capture, baseline show and drift check.

import (
	"io"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"

	"imgpipe/internal/drift"
	"imgpipe/internal/progress"
)

// CountBar draws an entry-count progress bar on w (total may be unknown:
// 0) when on, and nothing otherwise. Call finish once the walk is over.
func CountBar(w io.Writer, on bool, description string) (report progress.Func, finish func()) {
	if !on {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("files"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	var last atomic.Int64
	return func(done, total int64) {
			// Called for every entry from many goroutines: draw at most every 1000.
			if done-last.Load() < 1000 && done != total {
				return
			}
			last.Store(done)
			if total > 0 {
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(done)
		}, func() {
			_ = bar.Finish()
		}
}

// Baseline draws a baseline file (imgpipe baseline show): its view as
// JSON, or its text and, with files, a row per recorded entry.
func Baseline(w io.Writer, asJSON bool, b *drift.Baseline, files bool) error {
	if err := Write(w, asJSON, b.View(files), b.Text()); err != nil || !files || asJSON {
		return err
	}
	return Table{Header: drift.FileHeader, Rows: b.FileRows()}.Fprint(w)
}
