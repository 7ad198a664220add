package view

// Progress is drawn here: the packages below report through progress.Func
// (bytes) and azure.Event (steps, regions). On a terminal: a progress bar.
// Without one (CI, a pipe, a log file): the heartbeat lines of
// progress.Heartbeat and progress.Steps every Interval.

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"

	"imgpipe/internal/azure"
	"imgpipe/internal/progress"
)

// IsTerminal reports whether w is an interactive terminal.
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// Progress draws progress on W (stderr, so -o json keeps stdout clean).
type Progress struct {
	W        io.Writer
	JSON     bool          // -o json: no bars and no step lines
	Interval time.Duration // heartbeat period without a terminal (0: none)
}

func lineTo(w io.Writer) func(string) { return func(s string) { fmt.Fprintln(w, s) } }

// Bar returns a progress.Func for one long step (bytes): a bar on a
// terminal (not under -o json), heartbeat lines otherwise. Call the
// returned finish function when the step ends.
func (p Progress) Bar(description string, total int64) (progress.Func, func()) {
	if IsTerminal(p.W) && !p.JSON {
		bar := progressbar.NewOptions64(total, progressbar.OptionSetWriter(p.W), progressbar.OptionSetDescription(description),
			progressbar.OptionShowBytes(true), progressbar.OptionShowCount(), progressbar.OptionSetPredictTime(true),
			progressbar.OptionThrottle(100_000_000), progressbar.OptionClearOnFinish())
		return func(done, total int64) { bar.ChangeMax64(total); _ = bar.Set64(done) }, func() { _ = bar.Finish() }
	}
	if p.Interval <= 0 {
		return nil, func() {}
	}
	hb := progress.StartHeartbeat(lineTo(p.W), p.Interval, description)
	hb.CountBytes(total)
	return hb.SetBytes, hb.Stop
}

// Steps draws one bar per pass of a library add or verify
// (onprem.AddOptions.Step).
func (p Progress) Steps() (func(name string) progress.Func, func()) {
	finish := func() {}
	return func(name string) progress.Func {
		finish()
		var bar progress.Func
		bar, finish = p.Bar(name, 0)
		return bar
	}, func() { finish() }
}

// StepHeartbeat follows a plan's events with progress.Steps.
type StepHeartbeat struct{ s *progress.Steps }

// NewStepHeartbeat returns nil on a terminal (the bar and region lines are
// drawn there) or when heartbeats are off.
func (p Progress) NewStepHeartbeat(w io.Writer) *StepHeartbeat {
	if (IsTerminal(w) && !p.JSON) || p.Interval <= 0 {
		return nil
	}
	return &StepHeartbeat{progress.NewSteps(lineTo(w), p.Interval)}
}

// Event follows one event.
func (h *StepHeartbeat) Event(ev azure.Event) {
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

// Events draws Azure's steps and per-region replication as lines on w (the
// upload's bar on p.W).
func (p Progress) Events(w io.Writer) func(azure.Event) {
	var bar func(int64, int64)
	var finish func()
	last, lastStates, lastAt := "", "", time.Time{}
	hb := p.NewStepHeartbeat(w) // without a terminal: a line every Interval
	return func(ev azure.Event) {
		hb.Event(ev)
		switch {
		case ev.Phase == "start" && ev.Step != nil:
			if p.JSON {
				return
			}
			fmt.Fprintf(w, "%s %s %s...\n", ev.Step.Action, ev.Step.Kind, ev.Step.Name)
			if ev.Step.Kind == azure.KindBlob && hb == nil {
				bar, finish = p.Bar("upload", 0)
			}
		case ev.Phase == "progress" && ev.Bytes[1] > 0 && bar != nil:
			bar(ev.Bytes[0], ev.Bytes[1])
		case ev.Phase == "done" && ev.Step != nil && ev.Step.Kind == azure.KindBlob && finish != nil:
			finish()
			bar, finish = nil, nil
		case len(ev.Regions) > 0:
			// a line when a region changes state, else at most every 10 s
			var parts, states []string
			for _, r := range ev.Regions {
				parts = append(parts, fmt.Sprintf("%s %s %d%%", r.Region, r.State, r.Progress))
				states = append(states, r.Region+" "+r.State)
			}
			line, st := strings.Join(parts, ", "), strings.Join(states, ",")
			if line != last && (st != lastStates || time.Since(lastAt) >= 10*time.Second) && !p.JSON {
				fmt.Fprintf(w, "  replication: %s\n", line)
				last, lastStates, lastAt = line, st, time.Now()
			}
		}
	}
}
