package agent

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// A server's Retry-After is a floor: Send waits at least that long before
// the next try, even with RetryMax far below it (the test agent's 5ms).
func TestSendKeepsRetryAfter(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			t.Parallel()
			var mu sync.Mutex
			var arrivals []time.Time
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				arrivals = append(arrivals, time.Now())
				n := len(arrivals)
				mu.Unlock()
				if n == 1 {
					w.Header().Set("Retry-After", "1")
					w.WriteHeader(status)
					return
				}
				w.WriteHeader(http.StatusAccepted)
			}))
			defer ts.Close()
			if err := newTestAgent(t, ts.URL).Send(context.Background(), valid()); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(arrivals) != 2 {
				t.Fatalf("%d requests, want 2", len(arrivals))
			}
			if gap := arrivals[1].Sub(arrivals[0]); gap < time.Second {
				t.Fatalf("retried %v after a Retry-After of 1s", gap)
			}
		})
	}
}

// Without a Retry-After, Send's waits double from RetryBase up to RetryMax,
// each at least 0.8 of its step (the upper bound is not checked here: a
// busy machine may wake a timer late).
func TestSendBackoffWaits(t *testing.T) {
	var mu sync.Mutex
	var arrivals []time.Time
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		arrivals = append(arrivals, time.Now())
		mu.Unlock()
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer ts.Close()
	a, err := New(Options{Server: ts.URL, Credential: "tok", Host: "h1", Platform: "onprem", RetryBase: 20 * time.Millisecond, RetryMax: 40 * time.Millisecond, Attempts: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Send(context.Background(), valid()); err == nil {
		t.Fatal("Send succeeded against a server answering 503")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(arrivals) != 4 {
		t.Fatalf("%d requests, want 4", len(arrivals))
	}
	for i, step := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 40 * time.Millisecond} {
		if gap := arrivals[i+1].Sub(arrivals[i]); gap < step*4/5 {
			t.Errorf("wait %d: %v, want at least %v (0.8 of %v)", i+1, gap, step*4/5, step)
		}
	}
}

// drawSpread draws f 200 times and checks every value lies in [lo, hi)
// and that they spread: distinct values, some in the bottom and some in
// the top tenth of the range (a uniform draw misses one of them with
// probability about 2·0.9^200, below 1e-9).
func drawSpread(t *testing.T, what string, lo, hi time.Duration, f func() time.Duration) {
	t.Helper()
	seen := map[time.Duration]bool{}
	least, most := hi, lo
	for range 200 {
		d := f()
		if d < lo || d >= hi {
			t.Fatalf("%s: %v outside [%v, %v)", what, d, lo, hi)
		}
		seen[d] = true
		least, most = min(least, d), max(most, d)
	}
	tenth := (hi - lo) / 10
	if len(seen) < 150 || least >= lo+tenth || most < hi-tenth {
		t.Fatalf("%s: 200 draws not spread over [%v, %v): %d distinct, from %v to %v", what, lo, hi, len(seen), least, most)
	}
}

func TestRetryDelayNeverUndercutsRetryAfter(t *testing.T) {
	for _, c := range []struct{ backoff, retryAfter time.Duration }{
		{time.Millisecond, time.Second},       // backoff below the server's wait
		{30 * time.Second, 2 * time.Second},   // backoff above it: the server's wait holds
		{time.Second, 5 * time.Second},        // the server's 503 under read load
		{30 * time.Second, 120 * time.Second}, // beyond the default RetryMax
	} {
		drawSpread(t, "retry after "+c.retryAfter.String(), c.retryAfter, c.retryAfter*6/5, func() time.Duration {
			return retryDelay(c.backoff, c.retryAfter)
		})
	}
	// waits too short to jitter stay as they are
	if d := retryDelay(time.Second, 3); d != 3 {
		t.Fatalf("retry after 3ns: %v", d)
	}
}

// Interval and backoff jitter: ±20% ([0.8d, 1.2d)) as the README and
// --help say, spread over that range; --splay: [0, splay).
func TestJitterIsSpread(t *testing.T) {
	for _, d := range []time.Duration{time.Second, 5 * time.Minute, 30 * time.Second} {
		drawSpread(t, "jitter "+d.String(), d*4/5, d*6/5, func() time.Duration { return jitter(d) })
		drawSpread(t, "backoff "+d.String(), d*4/5, d*6/5, func() time.Duration { return retryDelay(d, 0) })
		drawSpread(t, "splay "+d.String(), 0, d, func() time.Duration { return splay(d) })
	}
	for _, d := range []time.Duration{0, -time.Second, 2} {
		if got := jitter(d); got != d {
			t.Errorf("jitter(%v) = %v", d, got)
		}
	}
	if got := splay(0); got != 0 {
		t.Errorf("splay(0) = %v", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		h    string
		want time.Duration
	}{
		{"", 0},
		{"2", 2 * time.Second},
		{" 5 ", 5 * time.Second},
		{"0", 0},
		{"-3", 0},
		{"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	} {
		if got := parseRetryAfter(c.h, now); got != c.want {
			t.Errorf("Retry-After %q: %v, want %v", c.h, got, c.want)
		}
	}
	// absurd values stay positive (no overflow) and jitter without overflow
	if d := parseRetryAfter("99999999999999999999", now); d != 0 {
		t.Errorf("unparsable huge Retry-After: %v", d)
	}
	d := parseRetryAfter("9999999999999", now)
	if d <= 0 || retryDelay(0, d) < d {
		t.Errorf("huge Retry-After: %v, delay %v", d, retryDelay(0, d))
	}
}
