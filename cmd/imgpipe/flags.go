package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/progress"
	"imgpipe/internal/view"
)

// durationValue is a duration flag read with the one duration grammar of
// the pipeline file: Go durations ("90m", "36h") plus days and weeks.
type durationValue = config.Duration

// durationVar defines a duration flag (see durationValue).
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var((*durationValue)(p), name, usage+" (e.g. 90m, 36h, 2d, 2w)")
}

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

// lockNotices is where lock waits and take-overs are told (tests replace it).
var lockNotices io.Writer = os.Stderr

// addLockTimeoutFlag gives a command that takes image run locks (publish,
// gc) --lock-timeout, and tells the user, on stderr, whom it waits for and
// when it takes over from a run that is gone.
func addLockTimeoutFlag(cmd *cobra.Command) {
	var timeout time.Duration
	durationVar(cmd.Flags(), &timeout, "lock-timeout", 0, "give up after waiting this long for another run of the image to release its lock, e.g. 5m (default: wait until interrupted)")
	pre := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if timeout < 0 {
			return fmt.Errorf("--lock-timeout %s: give a positive duration, e.g. 5m", timeout)
		}
		cmd.SetContext(catalog.WithLockOptions(cmd.Context(), view.LockNotices(lockNotices, timeout)))
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}
