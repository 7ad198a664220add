package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"imgpipe/internal/azure"
	"imgpipe/internal/progress"
)

// Progress is drawn here, never below cmd/: the packages report through
// progress.Func (bytes) and azure.Event (steps, regions). On a terminal: a
// progress bar. Without one (CI, a pipe, a log file): the heartbeat lines of
// progress.Heartbeat every --progress-interval (IMGPIPE_PROGRESS_INTERVAL,
// default 30s). Progress always goes to stderr, so -o json keeps stdout clean.

// progressInterval is the heartbeat period without a terminal (0: none).
var progressInterval = progressIntervalFromEnv()

// progressOut is where progress is drawn; tests replace it.
var progressOut io.Writer = os.Stderr

func progressIntervalFromEnv() time.Duration {
	if d, err := time.ParseDuration(os.Getenv("IMGPIPE_PROGRESS_INTERVAL")); err == nil && d >= 0 {
		return d
	}
	return 30 * time.Second
}

// addProgressFlags adds the global --progress-interval flag.
func addProgressFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&progressInterval, "progress-interval", progressInterval,
		"without a terminal, print a progress line this often (0: never; env IMGPIPE_PROGRESS_INTERVAL)")
}

func lineTo(w io.Writer) func(string) { return func(s string) { fmt.Fprintln(w, s) } }

// newProgressBar returns a progress.Func for one long step (bytes): a bar
// on a terminal (not under -o json), heartbeat lines otherwise. Call the
// returned finish function when the step ends.
func newProgressBar(description string, total int64) (progress.Func, func()) {
	if isTerminal(progressOut) && !jsonOutput() {
		bar := progressbar.NewOptions64(total, progressbar.OptionSetWriter(progressOut), progressbar.OptionSetDescription(description),
			progressbar.OptionShowBytes(true), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100_000_000), progressbar.OptionClearOnFinish())
		return func(done, total int64) { bar.ChangeMax64(total); _ = bar.Set64(done) }, func() { _ = bar.Finish() }
	}
	if progressInterval <= 0 {
		return nil, func() {}
	}
	hb := progress.StartHeartbeat(lineTo(progressOut), progressInterval, description)
	hb.CountBytes(total)
	return hb.SetBytes, hb.Stop
}

// stepHeartbeat follows a plan's events with progress.Steps.
type stepHeartbeat struct{ s *progress.Steps }

// newStepHeartbeat returns nil on a terminal (the bar and region lines
// are drawn there) or when heartbeats are off.
func newStepHeartbeat(w io.Writer) *stepHeartbeat {
	if (isTerminal(w) && !jsonOutput()) || progressInterval <= 0 {
		return nil
	}
	return &stepHeartbeat{progress.NewSteps(lineTo(w), progressInterval)}
}

func (h *stepHeartbeat) event(ev azure.Event) {
	if h == nil {
		return
	}
	switch {
	case ev.Phase == "start" && ev.Step != nil:
		h.s.Start(string(ev.Step.Action), string(ev.Step.Kind), ev.Step.Name)
	case ev.Phase == "done" && ev.Step != nil:
		h.s.End()
	case len(ev.Regions) > 0:
		rs := make([]progress.Region, len(ev.Regions))
		for i, r := range ev.Regions {
			rs[i] = progress.Region{Name: r.Region, State: r.State, Percent: int(r.Progress)}
		}
		name := ""
		if ev.Step != nil {
			name = ev.Step.Name
		}
		h.s.Regions(name, rs)
	case ev.Phase == "progress":
		h.s.Bytes(ev.Bytes[0], ev.Bytes[1])
	}
}
