package catalog

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testLockSaysWhoHolds: a waiter is told which run holds the lock (run id,
// pid, host, since), and --lock-timeout's error names it too.
func testLockSaysWhoHolds(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c1, c2 := openAt(t, loc), openAt(t, loc)
	started := make(chan int64)
	release := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- c1.WithImageLock(ctx, "web", "alice", func(ctx context.Context) error {
			r, err := c1.StartRun(ctx, Run{Kind: RunPublish, Image: "web", Version: "1.0.0", By: "alice"})
			if err != nil {
				return err
			}
			started <- r.ID
			<-release
			return c1.FinishRun(ctx, r.ID, nil)
		})
	}()
	runID := <-started

	var mu sync.Mutex
	var seen []Holder
	_, err := c2.LockImageWith(ctx, "web", LockOptions{Owner: "bob", Timeout: 400 * time.Millisecond,
		Waiting: func(h Holder) { mu.Lock(); seen = append(seen, h); mu.Unlock() }})
	host, _ := os.Hostname()
	want := fmt.Sprintf("run %d (pid %d, host %s) since ", runID, os.Getpid(), host)
	if !errors.Is(err, ErrLockTimeout) || !strings.Contains(err.Error(), want) {
		t.Fatalf("LockImage while held = %v, want ErrLockTimeout naming %q", err, want)
	}
	mu.Lock()
	if len(seen) != 1 || seen[0].RunID != runID || seen[0].PID != os.Getpid() || seen[0].Host != host || seen[0].By != "alice" ||
		seen[0].Since.IsZero() || !strings.HasPrefix(seen[0].String(), want) {
		t.Errorf("Waiting saw %+v, want one call for run %d", seen, runID)
	}
	mu.Unlock()
	if h, ok, err := c2.Holder(ctx, "web"); err != nil || !ok || h.RunID != runID {
		t.Errorf("Holder = %+v %v %v", h, ok, err)
	}
	// The options can come from the context (the CLI sets them once).
	var fromCtx []Holder
	lctx := WithLockOptions(ctx, LockOptions{Timeout: 200 * time.Millisecond, Waiting: func(h Holder) { fromCtx = append(fromCtx, h) }})
	if _, err := c2.LockImage(lctx, "web", "carol"); !errors.Is(err, ErrLockTimeout) || len(fromCtx) != 1 {
		t.Errorf("LockImage with context options = %v, saw %+v", err, fromCtx)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := c2.Holder(ctx, "web"); ok {
		t.Error("the lock row outlived Unlock")
	}
	r, _ := c2.Run(ctx, runID)
	if r.Status != RunSucceeded {
		t.Errorf("run %d is %s", runID, r.Status)
	}
}

// lockHolderEnv makes the test binary a lock holder (see
// TestLockHolderProcess): it is the real catalog code in a real process
// that the test kills with SIGKILL.
const lockHolderEnv = "IMGPIPE_TEST_LOCK_HOLDER"

// TestLockHolderProcess is not a test: run by testLockKilledHolder as a
// child process, it takes the lock of "web" in the catalog named by
// $IMGPIPE_TEST_LOCK_HOLDER, starts a run, says so on stdout and waits to
// be killed.
func TestLockHolderProcess(t *testing.T) {
	loc := os.Getenv(lockHolderEnv)
	if loc == "" {
		t.Skip("helper process for testLockKilledHolder")
	}
	ctx := context.Background()
	c, err := Open(ctx, loc)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	_ = c.WithImageLock(ctx, "web", "doomed", func(ctx context.Context) error {
		r, err := c.StartRun(ctx, Run{Kind: RunPublish, Image: "web", Version: "1.0.0", By: "doomed"})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked", r.ID)
		time.Sleep(time.Minute)
		os.Exit(3) // never reached: the test kills us first
		return nil
	})
}

// killedHolder starts a child process that takes the lock of "web" in
// the catalog at loc under a run, checks c sees it as the holder, kills it
// with SIGKILL (no cleanup of any kind) and returns the holder it was and
// its run id.
func killedHolder(t *testing.T, c *Catalog, loc string) (Holder, int64) {
	t.Helper()
	ctx := context.Background()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLockHolderProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), lockHolderEnv+"="+loc)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "locked ") || strings.HasPrefix(sc.Text(), "error ") {
				lines <- sc.Text()
				return
			}
		}
		close(lines)
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(60 * time.Second):
		t.Fatal("the holder process never took the lock")
	}
	runID, err := strconv.ParseInt(strings.TrimPrefix(line, "locked "), 10, 64)
	if err != nil {
		t.Fatalf("holder: %q", line)
	}
	h, ok, err := c.Holder(ctx, "web")
	if err != nil || !ok || h.PID != cmd.Process.Pid || h.RunID != runID {
		t.Fatalf("holder before the kill: %+v %v %v (child pid %d, run %d)", h, ok, err, cmd.Process.Pid, runID)
	}
	if err := cmd.Process.Signal(os.Kill); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	return h, runID
}

// testRunsShowsKilledRun: with nobody taking the lock over, imgpipe runs
// (Runs, Run) already shows the killed run as abandoned, and the lock is
// free.
func testRunsShowsKilledRun(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c := openAt(t, loc)
	_, runID := killedHolder(t, c, loc)
	deadline := time.Now().Add(10 * time.Second) // PostgreSQL notices the dead session within moments
	for {
		r, err := c.Run(ctx, runID)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == RunAbandoned {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the killed run is still %s", r.Status)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runs, err := c.Runs(ctx, RunFilter{Image: "web"})
	if err != nil || len(runs) != 1 || runs[0].Status != RunAbandoned {
		t.Errorf("runs = %+v %v", runs, err)
	}
	if _, ok, _ := c.Holder(ctx, "web"); ok {
		t.Error("the dead holder's lock row is still there")
	}
	// A live holder is not reaped.
	l, err := c.LockImage(ctx, "web", "alive")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	if n, err := c.ReapAbandoned(ctx); n != 0 || err != nil {
		t.Errorf("ReapAbandoned with a live holder = %d, %v", n, err)
	}
}

// testLockKilledHolder: a run holding the lock is killed with SIGKILL. The
// next run takes the lock over at once (SQLite: the holder is on this host
// and its pid is gone, no 2-minute lease to wait out; PostgreSQL: the
// session died with the process), says so, and the killed run is
// "abandoned", not "running" forever.
func testLockKilledHolder(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c := openAt(t, loc) // migrated before the child opens it
	h, runID := killedHolder(t, c, loc)

	start := time.Now()
	var took []Holder
	l, err := c.LockImageWith(ctx, "web", LockOptions{Owner: "next", Timeout: 20 * time.Second,
		TookOver: func(h Holder) { took = append(took, h) }})
	if err != nil {
		t.Fatalf("the lock of a killed holder was not taken over: %v", err)
	}
	defer l.Unlock(ctx)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v to take over from a killed holder", d)
	}
	if len(took) != 1 || took[0].RunID != runID || took[0].PID != h.PID {
		t.Errorf("TookOver saw %+v, want the killed run %d", took, runID)
	}
	r, err := c.Run(ctx, runID)
	if err != nil || r.Status != RunAbandoned || r.EndedAt.IsZero() || !strings.Contains(r.Error, "gone") {
		t.Errorf("the killed run is %+v (%v), want abandoned", r, err)
	}
	runs, _ := c.Runs(ctx, RunFilter{Image: "web", Status: RunAbandoned})
	if len(runs) != 1 || runs[0].ID != runID {
		t.Errorf("runs --status abandoned = %+v", runs)
	}
}

// TestLockLeaseOfAnotherHost: a SQLite holder on another host is taken
// over only once its lease ran out (its pid means nothing here), and its run
// is then abandoned.
func TestLockLeaseOfAnotherHost(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	c := openAt(t, sqliteBackend().newLocation(t), WithClock(clk.Now))
	r, err := c.StartRun(ctx, Run{Kind: RunDestroy, Image: "web"})
	if err != nil {
		t.Fatal(err)
	}
	owner := holderRecord{ID: "x", By: "far", Run: r.ID, PID: 1, Host: "elsewhere.example"}.encode()
	if _, err := c.DB().ExecContext(ctx, "INSERT INTO image_locks (image, owner, acquired_at, expires_at) VALUES ('web', ?, ?, ?)",
		owner, fmtTime(clk.Now()), fmtTime(clk.Now().Add(time.Minute))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.LockImageWith(ctx, "web", LockOptions{Timeout: 200 * time.Millisecond}); !errors.Is(err, ErrLockTimeout) ||
		!strings.Contains(err.Error(), "host elsewhere.example") {
		t.Fatalf("lock while another host's lease runs = %v", err)
	}
	clk.Advance(2 * time.Minute)
	l, err := c.LockImageWith(ctx, "web", LockOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(ctx)
	if got, _ := c.Run(ctx, r.ID); got.Status != RunAbandoned {
		t.Errorf("run of the expired holder is %s", got.Status)
	}
	// A row written by an older imgpipe still reads.
	if h := parseHolder("web", "alice/0123", fmtTime(clk.Now()), ""); h.By != "alice/0123" || h.RunID != 0 {
		t.Errorf("old owner: %+v", h)
	}
}
