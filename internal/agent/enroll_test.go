package agent

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestNewAllowsPlainHTTPOnLoopbackOnly(t *testing.T) {
	for _, srv := range []string{"http://127.0.0.1:8080", "http://127.8.9.10:1", "http://localhost:8080", "http://[::1]:8080", "https://fleet.example:8443"} {
		if _, err := New(Options{Server: srv, Token: "t", Host: "h", Platform: "onprem"}); err != nil {
			t.Errorf("%s refused: %v", srv, err)
		}
	}
	_, err := New(Options{Server: "http://fleet.example:8080", Token: "t", Host: "h", Platform: "onprem"})
	if err == nil || !strings.Contains(err.Error(), "clear text") {
		t.Errorf("plain http off loopback: %v", err)
	}
}

// fakeFleet answers enrolments (fleet token "fleet") with credential cred
// after failing the first failEnrol ones with 503, and reports carrying cred.
type fakeFleet struct {
	enrols, reports atomic.Int32
	enrolStatus     int
	failEnrol       int32
}

func (f *fakeFleet) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	const cred = CredentialPrefix + "issued"
	switch r.URL.Path {
	case EnrollPath:
		n := f.enrols.Add(1)
		var req EnrollRequest
		if r.Header.Get("Authorization") != "Bearer fleet" || json.NewDecoder(r.Body).Decode(&req) != nil || req.Host != "h1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		if n <= f.failEnrol {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		if f.enrolStatus != 0 {
			w.WriteHeader(f.enrolStatus)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_ = json.NewEncoder(w).Encode(EnrollResponse{Host: req.Host, Credential: cred})
	case ReportsPath:
		f.reports.Add(1)
		if r.Header.Get("Authorization") != "Bearer "+cred {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

func TestEnrolOnceKeepCredential(t *testing.T) {
	ff := &fakeFleet{failEnrol: 1}
	ts := httptest.NewServer(ff)
	defer ts.Close()
	credFile := filepath.Join(t.TempDir(), "state", "agent.credential")
	opts := Options{Server: ts.URL, Token: "fleet", CredentialFile: credFile, Host: "h1", Platform: "onprem", RetryBase: time.Millisecond, RetryMax: 2 * time.Millisecond}
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := a.Send(context.Background(), valid()); err != nil {
			t.Fatal(err)
		}
	}
	if ff.enrols.Load() != 2 || ff.reports.Load() != 2 { // one 503, one enrolment
		t.Fatalf("%d enrolments, %d reports", ff.enrols.Load(), ff.reports.Load())
	}
	fi, err := os.Stat(credFile)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("credential file mode %o, want 600", fi.Mode().Perm())
	}
	// a restarted agent uses the stored credential, without the fleet token
	opts.Token = ""
	b, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Send(context.Background(), valid()); err != nil {
		t.Fatal(err)
	}
	if ff.enrols.Load() != 2 {
		t.Errorf("the restarted agent enrolled again")
	}
	// a host already enrolled elsewhere: permanent, says what to do
	ff2 := &fakeFleet{enrolStatus: http.StatusConflict}
	ts2 := httptest.NewServer(ff2)
	defer ts2.Close()
	c, err := New(Options{Server: ts2.URL, Token: "fleet", Host: "h1", Platform: "onprem", RetryBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	err = c.Send(context.Background(), valid())
	var perm *PermanentError
	if !errors.As(err, &perm) || !strings.Contains(err.Error(), "revoke-agent") || ff2.enrols.Load() != 1 || ff2.reports.Load() != 0 {
		t.Fatalf("conflicting enrolment: %v (%d tries)", err, ff2.enrols.Load())
	}
}

func TestJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for i := 0; i < 200; i++ {
		d := jitter(10 * time.Second)
		if d < 8*time.Second || d > 12*time.Second {
			t.Fatalf("jitter(10s) = %s, outside [8s, 12s]", d)
		}
		seen[d] = true
	}
	if len(seen) < 100 {
		t.Errorf("jitter gave only %d distinct waits in 200", len(seen))
	}
	if jitter(0) != 0 {
		t.Error("jitter(0)")
	}
}

func TestLoopSplayHonoursContext(t *testing.T) {
	var hits atomic.Int32
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1); w.WriteHeader(202) }))
	defer ts.Close()
	a, err := New(Options{Server: ts.URL, Credential: "c", Host: "h", Platform: "onprem", Root: t.TempDir(), Splay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := a.Loop(ctx, time.Millisecond, 0, nil); err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 0 || time.Since(start) > 5*time.Second {
		t.Fatalf("splay: %d reports before the splay ended, returned after %s", hits.Load(), time.Since(start))
	}
}
