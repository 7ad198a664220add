package main

import (
	"io"
	"os"
	"time"

	"github.com/spf13/pflag"

	"imgpipe/internal/progress"
	"imgpipe/internal/view"
)

// Progress is drawn by internal/view on stderr, a bar on a terminal and
// heartbeat lines every --progress-interval (IMGPIPE_PROGRESS_INTERVAL,
// default 30s) without one. progressOut and progressInterval: tests set them.
var (
	progressOut      io.Writer = os.Stderr
	progressInterval           = 30 * time.Second
)

func addProgressFlags(fs *pflag.FlagSet) {
	if d, err := time.ParseDuration(os.Getenv("IMGPIPE_PROGRESS_INTERVAL")); err == nil && d >= 0 {
		progressInterval = d
	}
	fs.DurationVar(&progressInterval, "progress-interval", progressInterval,
		"without a terminal, print a progress line this often (0: never; env IMGPIPE_PROGRESS_INTERVAL)")
}

func progressView() view.Progress {
	return view.Progress{W: progressOut, JSON: jsonOutput(), Interval: progressInterval}
}

// newProgressBar is view.Progress.Bar on stderr.
func newProgressBar(description string, total int64) (progress.Func, func()) {
	return progressView().Bar(description, total)
}
