package progress

import (
	"cmp"
	"fmt"
	"imgpipe/internal/units"
	"strings"
	"sync"
	"time"
)

// Heartbeat renders, every interval, one line about one long step — what a
// log without a terminal (CI, a pipe) gets instead of a progress bar:
//
//	upload: 1.2 GiB of 2.0 GiB (60%), 41.0 MiB/s, ETA 20s [30s elapsed]
//	Still creating managed image web-1.0.0... [30s elapsed]
//	Still replicating 1.0.0... [10m0s elapsed] eastus: 40%, westus: Completed
//
// It prints nothing itself: each line goes to emit (cmd/ writes it to
// stderr).
type Heartbeat struct {
	emit  func(line string)
	label string // "upload", "creating version 1.0.0"
	start time.Time

	mu          sync.Mutex
	name        string // what replicates: the version
	done, total int64
	bytes       bool // a byte count is shown
	regions     []Region
	beats       int
	quit        chan struct{}
	once        sync.Once
	finished    chan struct{}
}

// Region is one target region of a replication as a heartbeat shows it.
type Region struct {
	Name    string
	State   string // "Replicating" (or "") shows Percent; any other state is shown as is
	Percent int
}

// StartHeartbeat begins a line every `every` about label until Stop.
func StartHeartbeat(emit func(string), every time.Duration, label string) *Heartbeat {
	h := &Heartbeat{emit: emit, label: label, start: time.Now(), quit: make(chan struct{}), finished: make(chan struct{})}
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

// CountBytes shows a byte count from the first line ("upload: 0 B, ..."),
// before anything was reported.
func (h *Heartbeat) CountBytes(total int64) {
	h.mu.Lock()
	h.bytes, h.total = true, total
	h.mu.Unlock()
}

// SetBytes is a Func: done of total bytes.
func (h *Heartbeat) SetBytes(done, total int64) {
	h.mu.Lock()
	h.done, h.total = done, total
	h.bytes = h.bytes || done > 0 || total > 0
	h.mu.Unlock()
}

// SetName names what replicates (the version).
func (h *Heartbeat) SetName(name string) {
	h.mu.Lock()
	h.name = name
	h.mu.Unlock()
}

// SetRegions makes the lines say each region's state.
func (h *Heartbeat) SetRegions(rs []Region) {
	h.mu.Lock()
	h.regions = append(h.regions[:0], rs...)
	h.mu.Unlock()
}

func (h *Heartbeat) beat() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.beats++
	h.emit(h.lineLocked(time.Since(h.start)))
}

// lineLocked renders the current state; called with mu held.
func (h *Heartbeat) lineLocked(elapsed time.Duration) string {
	el := fmt.Sprintf("[%s elapsed]", elapsed.Round(time.Second))
	switch {
	case len(h.regions) > 0:
		return fmt.Sprintf("Still replicating %s... %s %s", cmp.Or(h.name, h.label), el, RegionStates(h.regions))
	case h.bytes:
		return fmt.Sprintf("%s: %s %s", h.label, ByteProgress(h.done, h.total, elapsed), el)
	default:
		return fmt.Sprintf("Still %s... %s", h.label, el)
	}
}

// Stop ends the heartbeat; a byte-counting step that outlived one beat
// gets a last line saying it finished. Safe to call more than once.
func (h *Heartbeat) Stop() {
	h.once.Do(func() {
		close(h.quit)
		<-h.finished
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.beats > 0 && h.bytes {
			el := time.Since(h.start)
			h.emit(fmt.Sprintf("%s: finished, %s in %s (%s)", h.label, units.IEC(h.done), el.Round(time.Second), Rate(h.done, el)))
		}
	})
}

// ByteProgress renders "1.2 GiB of 2.0 GiB (60%), 41.0 MiB/s, ETA 20s".
func ByteProgress(done, total int64, elapsed time.Duration) string {
	s := units.IEC(done)
	if total > 0 {
		s += fmt.Sprintf(" of %s (%d%%)", units.IEC(total), done*100/total)
	}
	s += ", " + Rate(done, elapsed)
	if total > 0 && done > 0 && done < total && elapsed > 0 {
		left := time.Duration(float64(elapsed) * float64(total-done) / float64(done))
		s += ", ETA " + left.Round(time.Second).String()
	}
	return s
}

// Rate renders bytes per second: "41.0 MiB/s".
func Rate(done int64, elapsed time.Duration) string {
	if elapsed <= 0 {
		return "- /s"
	}
	return units.IEC(int64(float64(done)/elapsed.Seconds())) + "/s"
}

// RegionStates renders "eastus: 40%, westus: Completed".
func RegionStates(rs []Region) string {
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		st := r.State
		if st == "Replicating" || st == "" {
			st = fmt.Sprintf("%d%%", r.Percent)
		}
		parts = append(parts, r.Name+": "+st)
	}
	return strings.Join(parts, ", ")
}

// Steps keeps one heartbeat for the step of a plan under way (publish,
// replicate, destroy): a step's start begins one, its end stops it; bytes
// and regions change what the next line says.
type Steps struct {
	emit  func(string)
	every time.Duration
	hb    *Heartbeat
}

// NewSteps returns a Steps emitting a line every `every`.
func NewSteps(emit func(string), every time.Duration) *Steps {
	return &Steps{emit: emit, every: every}
}

// Start begins the heartbeat of a step: "creating managed image web-1.0.0".
func (s *Steps) Start(action, kind, name string) {
	s.End()
	s.hb = StartHeartbeat(s.emit, s.every, fmt.Sprintf("%s %s %s", Ing(action), strings.ReplaceAll(kind, "_", " "), name))
	s.hb.SetName(name)
}

// Regions shows a replication's regions (of the version name, when known).
func (s *Steps) Regions(name string, rs []Region) {
	if s.hb == nil {
		s.hb = StartHeartbeat(s.emit, s.every, name)
	}
	if name != "" {
		s.hb.SetName(name)
	}
	s.hb.SetRegions(rs)
}

// Bytes shows the step's byte count.
func (s *Steps) Bytes(done, total int64) {
	if s.hb != nil {
		s.hb.SetBytes(done, total)
	}
}

// End stops the current step's heartbeat.
func (s *Steps) End() {
	if s.hb != nil {
		s.hb.Stop()
		s.hb = nil
	}
}

// Ing turns a plan action into its progressive form: create -> creating.
func Ing(verb string) string {
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
