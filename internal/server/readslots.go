package server

import (
	"net/http"
	"runtime"
	"strings"
	"time"
)

// Read slots. With a SQLite catalog every read runs in this process: its
// queries in SQLite's VM and its page rendered here, each a few to tens of
// milliseconds of CPU without a pause. Two readers back to back then hold
// both of a 2-core machine's processors, and the intake's one writer and
// its handlers wait for Go's scheduler to preempt them (measured: 2
// readers cut intake by 60-75%, the writer's share of CPU fell from 62%
// to 21%). So reads (GET and HEAD of pages, the API and /metrics) run at
// most ReadSlots at a time, one fewer than the processors Go runs on
// (at least one); the intake never waits for a slot. On PostgreSQL the
// queries run in the database's processes and reads are not limited.

// ReadSlotWait bounds the wait for a read slot; then 503 with Retry-After.
const ReadSlotWait = 10 * time.Second

// ReadSlots is the number of reads served at once with a SQLite catalog.
func ReadSlots() int { return max(1, runtime.GOMAXPROCS(0)-1) }

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
				w.Header().Set("Retry-After", "5")
				writeError(w, http.StatusServiceUnavailable, "too many reads at once; retry later")
				return
			}
		}
		defer func() { <-s.readSlots }()
		h.ServeHTTP(w, r)
	})
}

// isRead: a request that reads the catalog; not the health check, the
// static files, nor sign-in (/auth/: its callback waits on the issuer).
func isRead(r *http.Request) bool {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		return false
	}
	p := r.URL.Path
	return p != "/healthz" && !strings.HasPrefix(p, "/static/") && !strings.HasPrefix(p, "/auth/")
}
