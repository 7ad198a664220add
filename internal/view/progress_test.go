package view

import (
	"bytes"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"imgpipe/internal/azure"
)

// syncBuffer is a bytes.Buffer safe for the heartbeat's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func withProgress(every time.Duration) (Progress, *syncBuffer) {
	buf := &syncBuffer{}
	return Progress{W: buf, Interval: every}, buf
}

// waitFor polls until out matches re (heartbeats are asynchronous).
func waitFor(t *testing.T, out *syncBuffer, re *regexp.Regexp) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if re.MatchString(out.String()) {
			return
		}
	}
	t.Fatalf("no line matching %s in:\n%s", re, out.String())
}

func TestHeartbeatBytes(t *testing.T) {
	p, out := withProgress(20 * time.Millisecond)
	fn, finish := p.Bar("upload", 0)
	if fn == nil {
		t.Fatal("no progress function without a terminal")
	}
	fn(512<<20, 2<<30)
	waitFor(t, out, regexp.MustCompile(`(?m)^upload: 512\.0 MiB of 2\.0 GiB \(25%\), [0-9.]+ [KMG]iB/s, ETA [0-9hms.]+ \[[0-9hms.]+ elapsed\]$`))
	fn(2<<30, 2<<30)
	finish()
	if !regexp.MustCompile(`(?m)^upload: finished, 2\.0 GiB in `).MatchString(out.String()) {
		t.Fatalf("no closing line:\n%s", out)
	}
	n := strings.Count(out.String(), "\n")
	time.Sleep(60 * time.Millisecond)
	if strings.Count(out.String(), "\n") != n {
		t.Fatalf("heartbeat goes on after finish:\n%s", out)
	}
}

func TestHeartbeatOff(t *testing.T) {
	p, out := withProgress(0)
	fn, finish := p.Bar("convert", 100)
	if fn != nil {
		fn(1, 100)
	}
	time.Sleep(30 * time.Millisecond)
	finish()
	if out.String() != "" {
		t.Fatalf("--progress-interval 0 printed:\n%s", out)
	}
}

func TestHeartbeatPublishSteps(t *testing.T) {
	p, out := withProgress(20 * time.Millisecond)
	hb := p.NewStepHeartbeat(out)
	img := &azure.Step{Action: azure.ActCreate, Kind: azure.KindManagedImage, Name: "web-1.0.0"}
	hb.Event(azure.Event{Step: img, Phase: "start"})
	waitFor(t, out, regexp.MustCompile(`(?m)^Still creating managed image web-1\.0\.0\.\.\. \[[0-9hms.]+ elapsed\]$`))
	hb.Event(azure.Event{Step: img, Phase: "done"})

	ver := &azure.Step{Action: azure.ActCreate, Kind: azure.KindVersion, Name: "1.0.0"}
	hb.Event(azure.Event{Step: ver, Phase: "start"})
	hb.Event(azure.Event{Step: &azure.Step{Action: azure.ActWait, Kind: azure.KindReplication, Name: "1.0.0"}, Phase: "progress",
		Regions: []azure.RegionProgress{{Region: "eastus", State: "Replicating", Progress: 40}, {Region: "westus", State: "Completed", Progress: 100}}})
	waitFor(t, out, regexp.MustCompile(`(?m)^Still replicating 1\.0\.0\.\.\. \[[0-9hms.]+ elapsed\] eastus: 40%, westus: Completed$`))
	hb.Event(azure.Event{Step: ver, Phase: "done"})
}
