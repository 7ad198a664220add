package progress

import (
	"imgpipe/internal/units"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lines) emit(s string) { l.mu.Lock(); l.b.WriteString(s + "\n"); l.mu.Unlock() }
func (l *lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// waitFor polls until out matches re (heartbeats are asynchronous).
func waitFor(t *testing.T, out *lines, re *regexp.Regexp) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if re.MatchString(out.String()) {
			return
		}
	}
	t.Fatalf("no line matching %s in:\n%s", re, out.String())
}

func TestHeartbeatLines(t *testing.T) {
	out := &lines{}
	hb := StartHeartbeat(out.emit, 20*time.Millisecond, "upload")
	hb.CountBytes(0)
	waitFor(t, out, regexp.MustCompile(`(?m)^upload: 0 B, 0 B/s \[0s elapsed\]$`))
	hb.SetBytes(512<<20, 2<<30)
	waitFor(t, out, regexp.MustCompile(`(?m)^upload: 512\.0 MiB of 2\.0 GiB \(25%\), [0-9.]+ [KMG]iB/s, ETA [0-9hms.]+ \[[0-9hms.]+ elapsed\]$`))
	hb.SetBytes(2<<30, 2<<30)
	hb.Stop()
	hb.Stop()
	if !regexp.MustCompile(`(?m)^upload: finished, 2\.0 GiB in `).MatchString(out.String()) {
		t.Fatalf("no closing line:\n%s", out)
	}
	n := strings.Count(out.String(), "\n")
	time.Sleep(60 * time.Millisecond)
	if strings.Count(out.String(), "\n") != n {
		t.Fatalf("heartbeat goes on after Stop:\n%s", out)
	}
}

func TestSteps(t *testing.T) {
	out := &lines{}
	s := NewSteps(out.emit, 20*time.Millisecond)
	s.Start("create", "managed_image", "web-1.0.0")
	waitFor(t, out, regexp.MustCompile(`(?m)^Still creating managed image web-1\.0\.0\.\.\. \[[0-9hms.]+ elapsed\]$`))
	s.Start("upload", "blob", "web-1.0.0.vhd")
	s.Bytes(1<<20, 4<<20)
	waitFor(t, out, regexp.MustCompile(`(?m)^uploading blob web-1\.0\.0\.vhd: 1\.0 MiB of 4\.0 MiB \(25%\), .* elapsed\]$`))
	s.End()
	s.Regions("1.0.0", []Region{{Name: "eastus", State: "Replicating", Percent: 40}, {Name: "westus", State: "Completed", Percent: 100}})
	waitFor(t, out, regexp.MustCompile(`(?m)^Still replicating 1\.0\.0\.\.\. \[[0-9hms.]+ elapsed\] eastus: 40%, westus: Completed$`))
	s.End()
	s.End()
}

func TestRendering(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{units.IEC(512), "512 B"}, {units.IEC(1536 << 10), "1.5 MiB"}, {units.IEC(2 << 30), "2.0 GiB"},
		{ByteProgress(1<<30, 2<<30, 10*time.Second), "1.0 GiB of 2.0 GiB (50%), 102.4 MiB/s, ETA 10s"},
		{ByteProgress(5, 0, 0), "5 B, - /s"},
		{RegionStates([]Region{{Name: "a", Percent: 7}, {Name: "b", State: "Failed"}}), "a: 7%, b: Failed"},
		{Ing("create"), "creating"}, {Ing("upload"), "uploading"}, {Ing("wait"), "waiting for"}, {Ing("delete"), "deleting"}, {Ing(""), "working on"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}
