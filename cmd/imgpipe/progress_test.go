package main

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azure"
)

func withProgress(t *testing.T, every time.Duration) *syncBuffer {
	t.Helper()
	buf := &syncBuffer{}
	oldOut, oldEvery := progressOut, progressInterval
	progressOut, progressInterval = buf, every
	t.Cleanup(func() { progressOut, progressInterval = oldOut, oldEvery })
	return buf
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
	out := withProgress(t, 20*time.Millisecond)
	fn, finish := newProgressBar("upload", 0)
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
	out := withProgress(t, 0)
	fn, finish := newProgressBar("convert", 100)
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
	out := withProgress(t, 20*time.Millisecond)
	hb := newStepHeartbeat(out)
	img := &azure.Step{Action: azure.ActCreate, Kind: azure.KindManagedImage, Name: "web-1.0.0"}
	hb.event(azure.Event{Step: img, Phase: "start"})
	waitFor(t, out, regexp.MustCompile(`(?m)^Still creating managed image web-1\.0\.0\.\.\. \[[0-9hms.]+ elapsed\]$`))
	hb.event(azure.Event{Step: img, Phase: "done"})

	ver := &azure.Step{Action: azure.ActCreate, Kind: azure.KindVersion, Name: "1.0.0"}
	hb.event(azure.Event{Step: ver, Phase: "start"})
	hb.event(azure.Event{Step: &azure.Step{Action: azure.ActWait, Kind: azure.KindReplication, Name: "1.0.0"}, Phase: "progress",
		Regions: []azure.RegionProgress{{Region: "eastus", State: "Replicating", Progress: 40}, {Region: "westus", State: "Completed", Progress: 100}}})
	waitFor(t, out, regexp.MustCompile(`(?m)^Still replicating 1\.0\.0\.\.\. \[[0-9hms.]+ elapsed\] eastus: 40%, westus: Completed$`))
	hb.event(azure.Event{Step: ver, Phase: "done"})
}
