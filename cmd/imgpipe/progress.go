package main

import (
	"cmp"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/pflag"

	"imgpipe/internal/azure"
	"imgpipe/internal/progress"
)

// Progress is drawn here, never below cmd/: the packages report through
// progress.Func (bytes) and azure.Event (steps, regions).
//
// On a terminal: a progress bar. Without one (CI, a pipe, a log file): a
// heartbeat line every --progress-interval (IMGPIPE_PROGRESS_INTERVAL,
// default 30s) with done/total, rate and ETA, or, while a gallery version
// replicates, each region's state:
//
//	upload: 1.2 GiB of 2.0 GiB (60%), 41.0 MiB/s, ETA 20s [30s elapsed]
//	Still replicating 1.0.0... [10m0s elapsed] eastus: 40%, westus: Completed
//
// Progress always goes to stderr, so -o json keeps stdout clean.

const defaultProgressInterval = 30 * time.Second

// progressInterval is the heartbeat period without a terminal (0: none).
var progressInterval = progressIntervalFromEnv()

// progressOut is where progress is drawn; tests replace it.
var progressOut io.Writer = os.Stderr

func progressIntervalFromEnv() time.Duration {
	if s := os.Getenv("IMGPIPE_PROGRESS_INTERVAL"); s != "" {
		if d, err := time.ParseDuration(s); err == nil && d >= 0 {
			return d
		}
	}
	return defaultProgressInterval
}

// addProgressFlags adds the global --progress-interval flag.
func addProgressFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&progressInterval, "progress-interval", progressInterval,
		"without a terminal, print a progress line this often (0: never; env IMGPIPE_PROGRESS_INTERVAL)")
}

// newProgressBar returns a progress.Func for one long step (bytes): a bar
// on a terminal (not under -o json), heartbeat lines otherwise. Call the
// returned finish function when the step ends.
func newProgressBar(description string, total int64) (progress.Func, func()) {
	if isTerminal(progressOut) && !jsonOutput() {
		bar := progressbar.NewOptions64(total,
			progressbar.OptionSetWriter(progressOut),
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
	if progressInterval <= 0 {
		return nil, func() {}
	}
	hb := startHeartbeat(progressOut, progressInterval, description)
	hb.mu.Lock()
	hb.bytes, hb.total = true, total // a byte count from the start: "upload: 0 B, ..."
	hb.mu.Unlock()
	return hb.setBytes, hb.stop
}

// heartbeat prints one line per interval about one step until stopped.
type heartbeat struct {
	w     io.Writer
	label string // "upload", "creating version 1.0.0"
	name  string // what replicates: the version
	start time.Time

	mu          sync.Mutex
	done, total int64
	bytes       bool // setBytes was called with something to count
	regions     []azure.RegionProgress
	beats       int
	quit        chan struct{}
	once        sync.Once
	finished    chan struct{}
}

func startHeartbeat(w io.Writer, every time.Duration, label string) *heartbeat {
	h := &heartbeat{w: w, label: label, start: time.Now(), quit: make(chan struct{}), finished: make(chan struct{})}
	go func() {
		defer close(h.finished)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-h.quit:
				return
			case <-t.C:
				h.beat()
			}
		}
	}()
	return h
}

func (h *heartbeat) setBytes(done, total int64) {
	h.mu.Lock()
	h.done, h.total = done, total
	h.bytes = h.bytes || done > 0 || total > 0
	h.mu.Unlock()
}

func (h *heartbeat) setName(name string) {
	h.mu.Lock()
	h.name = name
	h.mu.Unlock()
}

func (h *heartbeat) setRegions(rs []azure.RegionProgress) {
	h.mu.Lock()
	h.regions = append(h.regions[:0], rs...)
	h.mu.Unlock()
}

func (h *heartbeat) beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beats++
	fmt.Fprintln(h.w, h.lineLocked(time.Since(h.start)))
}

// lineLocked renders the current state; called with mu held.
func (h *heartbeat) lineLocked(elapsed time.Duration) string {
	el := fmt.Sprintf("[%s elapsed]", elapsed.Round(time.Second))
	switch {
	case len(h.regions) > 0:
		return fmt.Sprintf("Still replicating %s... %s %s", cmp.Or(h.name, h.label), el, regionStates(h.regions))
	case h.bytes:
		return fmt.Sprintf("%s: %s %s", h.label, byteProgress(h.done, h.total, elapsed), el)
	default:
		return fmt.Sprintf("Still %s... %s", h.label, el)
	}
}

// stop ends the heartbeat; a step that outlived one beat gets a last line
// saying it finished.
func (h *heartbeat) stop() {
	h.once.Do(func() {
		close(h.quit)
		<-h.finished
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.beats > 0 && h.bytes {
			el := time.Since(h.start)
			fmt.Fprintf(h.w, "%s: finished, %s in %s (%s)\n", h.label, sizeIEC(h.done), el.Round(time.Second), rate(h.done, el))
		}
	})
}

// byteProgress renders "1.2 GiB of 2.0 GiB (60%), 41.0 MiB/s, ETA 20s".
func byteProgress(done, total int64, elapsed time.Duration) string {
	s := sizeIEC(done)
	if total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", sizeIEC(total), done*100/total)
	}
	s += ", " + rate(done, elapsed)
	if total > 0 && done > 0 && done < total && elapsed > 0 {
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		s += ", ETA " + left.Round(time.Second).String()
	}
	return s
}

func rate(done int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "- /s"
	}
	return sizeIEC(int64(float64(done)/elapsed.Seconds())) + "/s"
}

// regionStates renders "eastus: 40%, westus: Completed".
func regionStates(rs []azure.RegionProgress) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		st := r.State
		if st == "Replicating" || st == "" {
			st = fmt.Sprintf("%d%%", r.Progress)
		}
		parts = append(parts, r.Region+": "+st)
	}
	return strings.Join(parts, ", ")
}

// stepHeartbeat keeps one heartbeat for the publish step under way:
// "Still creating managed image web-1.0.0... [30s elapsed]", the upload's
// bytes, or the regions of a replication (publish, replicate, destroy).
type stepHeartbeat struct {
	w  io.Writer
	hb *heartbeat
}

// newStepHeartbeat returns nil on a terminal (the bar and region lines
// are drawn there) or when heartbeats are off.
func newStepHeartbeat(w io.Writer) *stepHeartbeat {
	if (isTerminal(w) && !jsonOutput()) || progressInterval <= 0 {
		return nil
	}
	return &stepHeartbeat{w: w}
}

// event follows ev: a step's start begins a heartbeat, its end stops it;
// bytes and regions update what the next line says.
func (s *stepHeartbeat) event(ev azure.Event) {
	if s == nil {
		return
	}
	switch {
	case ev.Phase == "start" && ev.Step != nil:
		s.end()
		label := fmt.Sprintf("%s %s %s", ing(string(ev.Step.Action)), strings.ReplaceAll(string(ev.Step.Kind), "_", " "), ev.Step.Name)
		s.hb = startHeartbeat(s.w, progressInterval, label)
		s.hb.setName(ev.Step.Name)
	case ev.Phase == "done" && ev.Step != nil:
		s.end()
	case len(ev.Regions) > 0:
		if s.hb == nil {
			name := ""
			if ev.Step != nil {
				name = ev.Step.Name
			}
			s.hb = startHeartbeat(s.w, progressInterval, name)
		}
		if ev.Step != nil {
			s.hb.setName(ev.Step.Name)
		}
		s.hb.setRegions(ev.Regions)
	case ev.Phase == "progress" && s.hb != nil:
		s.hb.setBytes(ev.Bytes[0], ev.Bytes[1])
	}
}

func (s *stepHeartbeat) end() {
	if s.hb != nil {
		s.hb.stop()
		s.hb = nil
	}
}

// ing turns a plan action into its progressive form: create -> creating.
func ing(verb string) string {
	switch {
	case verb == "":
		return "working on"
	case strings.HasSuffix(verb, "e") && !strings.HasSuffix(verb, "ee"):
		return verb[:len(verb)-1] + "ing"
	case verb == "wait":
		return "waiting for"
	}
	return verb + "ing"
}
