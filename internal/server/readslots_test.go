package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// testReadSlotsLeaveIntakeFree (both databases): with every read slot
// taken, a report is still stored and answered at once, the health check
// too, and a read waits for a slot (and is served when one frees).
func testReadSlotsLeaveIntakeFree(t *testing.T, b backend) {
	f := newFixture(t, b, Config{})
	seedCatalog(t, f.cat)
	if cap(f.srv.readSlots) != ReadSlots(b.name) || ReadSlots(b.name) < 1 {
		t.Fatalf("read slots %d, want ReadSlots(%s) = %d", cap(f.srv.readSlots), b.name, ReadSlots(b.name))
	}
	if f.srv.readBudget == nil || f.srv.readBudget.share != ReadShare(b.name) {
		t.Fatalf("read budget %+v, want a share of %v on %s", f.srv.readBudget, ReadShare(b.name), b.name)
	}
	cred := f.credFor(t, "web-a")
	for range cap(f.srv.readSlots) {
		f.srv.readSlots <- struct{}{}
	}
	read := make(chan int, 1)
	go func() {
		resp, err := f.ts.Client().Get(f.ts.URL + "/api/hosts")
		if err != nil {
			read <- 0
			return
		}
		resp.Body.Close()
		read <- resp.StatusCode
	}()
	body, _ := json.Marshal(validReport("web-a"))
	t0 := time.Now()
	if status, msg := post(t, f, cred, "application/json", body); status != http.StatusAccepted {
		t.Fatalf("report while the reads are full: %d %s", status, msg)
	}
	resp, err := f.ts.Client().Get(f.ts.URL + "/healthz")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz while the reads are full: %d", resp.StatusCode)
	}
	if d := time.Since(t0); d > 5*time.Second {
		t.Fatalf("report and health check took %s with the read slots taken", d)
	}
	select {
	case st := <-read:
		t.Fatalf("a read was served (%d) with every read slot taken", st)
	case <-time.After(200 * time.Millisecond):
	}
	<-f.srv.readSlots
	select {
	case st := <-read:
		if st != http.StatusOK {
			t.Fatalf("read once a slot freed: %d", st)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the read was not served once a slot freed")
	}
}

// Which requests take a read slot; a server without slots lets every
// request pass.
func TestReadSlotsWhichRequests(t *testing.T) {
	for _, tc := range []struct {
		method, path string
		read         bool
	}{{"GET", "/", true}, {"GET", "/api/hosts", true}, {"HEAD", "/metrics", true}, {"GET", "/hosts/x", true},
		{"GET", "/healthz", false}, {"GET", "/static/app.css", false}, {"GET", "/auth/callback", false},
		{"POST", "/api/reports", false}, {"POST", "/api/enroll", false}} {
		r, _ := http.NewRequest(tc.method, tc.path, nil)
		if isRead(r) != tc.read {
			t.Errorf("isRead(%s %s) = %v", tc.method, tc.path, !tc.read)
		}
	}
	served := 0
	h := (&Server{}).limitReads(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { served++ }))
	for range 3 {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/api/hosts", nil))
	}
	if served != 3 {
		t.Fatalf("without read slots %d of 3 reads were served", served)
	}
}

// TestReadBudget: while the intake is busy, reads that used their share
// of the slot time wait for it to refill; with the intake idle they do
// not wait; a wait that would pass the deadline gives up at once.
func TestReadBudget(t *testing.T) {
	ctx := context.Background()
	busy := func(time.Time) bool { return true }
	idle := func(time.Time) bool { return false }
	far := time.Now().Add(time.Minute)
	b := newReadBudget(0.25, 20*time.Millisecond)
	t0 := time.Now()
	if !b.wait(ctx, busy, far) || time.Since(t0) > 50*time.Millisecond {
		t.Fatalf("the first read waited %s with a full budget", time.Since(t0))
	}
	b.spend(50 * time.Millisecond) // 30 ms owed: 120 ms at a quarter
	t0 = time.Now()
	if !b.wait(ctx, idle, far) || time.Since(t0) > 50*time.Millisecond {
		t.Fatalf("a read waited %s with the intake idle", time.Since(t0))
	}
	t0 = time.Now()
	if !b.wait(ctx, busy, far) {
		t.Fatal("a read within the deadline was refused")
	}
	if d := time.Since(t0); d < 90*time.Millisecond || d > 3*time.Second {
		t.Fatalf("a read owing 30 ms of slot time at a share of 0.25 waited %s, want about 120 ms", d)
	}
	b.spend(time.Second)
	t0 = time.Now()
	if b.wait(ctx, busy, time.Now().Add(100*time.Millisecond)) || time.Since(t0) > 50*time.Millisecond {
		t.Fatalf("a wait past the deadline was not refused at once (%s)", time.Since(t0))
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if b.wait(cctx, busy, far) {
		t.Fatal("a wait with its context ended returned true")
	}
}
