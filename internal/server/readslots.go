package server

import (
	"context"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Read slots. A read (GET and HEAD of pages, the API and /metrics) is a
// few milliseconds of CPU without a pause: with a SQLite catalog all of it
// in this process (the queries in SQLite's VM, the page rendered here),
// with PostgreSQL about two thirds here (decoding rows, rendering) and a
// third in the database's backend. Two readers back to back then hold
// both of a 2-core machine's processors, and the intake's writers and
// handlers wait for a processor (measured at 100k hosts: 2 readers cut
// intake by 60-75% on SQLite, 33-54% on PostgreSQL). So reads run at most
// ReadSlots at a time (on SQLite one fewer than the processors Go runs
// on), and the intake never waits for a slot. And while agents report,
// reads hold the slots at most ReadShare of the time (a budget of slot
// time that refills at that rate, up to ReadBurst): readers back to back
// then wait a little between reads instead of taking a processor from the
// intake for good, while people reading a page now and then stay well
// within it. With the intake idle reads are not metered.
//
// The slots and the budget are this replica's: they shape when a read is
// served, never what it answers, so replicas behind one balancer still
// give the same answers; each keeps its own intake's share.

// ReadSlotWait bounds the wait for a read slot; then 503 with Retry-After.
const ReadSlotWait = 10 * time.Second

// ReadSlots is the number of reads served at once. On PostgreSQL part of
// a read's slot time is spent waiting for the database's process, and
// with one slot fewer than the processors reads queued behind each other
// with a processor idle: at 100k hosts on 2 cores, 10 people reading a
// page a second saw p95 of 88-106 ms with one slot and 45-69 ms with two
// (the intake alike either way).
func ReadSlots(backend string) int {
	if backend == "postgres" {
		return max(1, runtime.GOMAXPROCS(0))
	}
	return max(1, runtime.GOMAXPROCS(0)-1)
}

// ReadShare is the share of the time reads may hold the read slots while
// agents report (summed over the slots), and ReadBurst the slot time a
// read may take at once beyond it. On PostgreSQL a read's slot time
// includes its round trips, waiting on the database's processes beside
// the intake's writers, so the same share costs the intake less. Measured
// at 100k hosts with 2 readers back to back on 2 cores: SQLite at 0.25
// and 0.3 cut intake 18% and 20%; PostgreSQL with 2 slots at 0.4, 0.5,
// 0.6 and 0.75 cut it 8%, 4%, 5% and 12% with the readers' p95 at
// 52-92, 51-97, 44-70 and 34-50 ms (one slot without a budget: 34%).
func ReadShare(backend string) float64 {
	if backend == "postgres" {
		return 0.6
	}
	return 0.25
}

// ReadBurst: see ReadShare.
const ReadBurst = 100 * time.Millisecond

// intakeRecent: reports within this long mean the intake is busy.
const intakeRecent = 100 * time.Millisecond

// readBudget meters the read slots' time while the intake is busy.
type readBudget struct {
	share float64
	burst time.Duration

	mu     sync.Mutex
	tokens time.Duration // slot time reads may still take (may be negative: owed)
	at     time.Time     // when tokens was last refilled
}

func newReadBudget(share float64, burst time.Duration) *readBudget {
	return &readBudget{share: share, burst: burst, tokens: burst, at: time.Now()}
}

// wait returns when a read may start: at once while the intake is idle
// or the budget holds slot time, else once it has refilled; false when
// ctx ended or the wait would go past deadline.
func (b *readBudget) wait(ctx context.Context, busy func(time.Time) bool, deadline time.Time) bool {
	for {
		b.mu.Lock()
		now := time.Now()
		b.tokens = min(b.burst, b.tokens+time.Duration(float64(now.Sub(b.at))*b.share))
		b.at = now
		if b.tokens > 0 || !busy(now) {
			b.mu.Unlock()
			return true
		}
		need := time.Duration(float64(-b.tokens)/b.share) + time.Millisecond
		b.mu.Unlock()
		if now.Add(need).After(deadline) {
			return false
		}
		t := time.NewTimer(need)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		}
	}
}

// spend charges a read's slot time (only while the intake is busy).
func (b *readBudget) spend(d time.Duration) {
	b.mu.Lock()
	b.tokens -= d
	b.mu.Unlock()
}

// limitReads admits reads through s.readSlots (nil: unlimited).
func (s *Server) limitReads(h http.Handler) http.Handler {
	if s.readSlots == nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !isRead(r) {
			h.ServeHTTP(w, r)
			return
		}
		deadline := time.Now().Add(ReadSlotWait)
		busy := func() {
			w.Header().Set("Retry-After", "5")
			writeError(w, http.StatusServiceUnavailable, "too many reads at once; retry later")
		}
		select {
		case s.readSlots <- struct{}{}:
		default:
			t := time.NewTimer(ReadSlotWait)
			select {
			case s.readSlots <- struct{}{}:
				t.Stop()
			case <-r.Context().Done():
				t.Stop()
				return // the client is gone
			case <-t.C:
				busy()
				return
			}
		}
		defer func() { <-s.readSlots }()
		if !s.readBudget.wait(r.Context(), s.intakeBusy, deadline) {
			if r.Context().Err() == nil {
				busy()
			}
			return
		}
		t0 := time.Now()
		h.ServeHTTP(w, r)
		if now := time.Now(); s.intakeBusy(now) {
			s.readBudget.spend(now.Sub(t0))
		}
	})
}

// intakeBusy: agents are reporting (a report waits for its commit, or
// one came within intakeRecent).
func (s *Server) intakeBusy(now time.Time) bool { return s.queue.busy(now, intakeRecent) }

// isRead: a request that reads the catalog; not the health check, the
// static files, nor sign-in (/auth/: its callback waits on the issuer).
func isRead(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p != "/healthz" && !strings.HasPrefix(p, "/static/") && !strings.HasPrefix(p, "/auth/")
}
