package main

import (
	"os"

	"github.com/schollz/progressbar/v3"

	"imgpipe/internal/progress"
)

// newProgressBar returns a progress.Func that draws a byte progress bar on
// stderr when it is a terminal, and nothing otherwise. Call the returned
// finish function when the work ends.
func newProgressBar(description string, total int64) (progress.Func, func()) {
	if !isTerminal(os.Stderr) || jsonOutput() {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100_000_000),
		progressbar.OptionClearOnFinish(),
	)
	return func(done, total int64) {
			bar.ChangeMax64(total)
			_ = bar.Set64(done)
		}, func() {
			_ = bar.Finish()
		}
}
