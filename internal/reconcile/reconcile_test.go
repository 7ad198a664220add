package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/events"
	"imgpipe/internal/testenv"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type env struct {
	t   *testing.T
	ctx context.Context
	cat *catalog.Catalog
	clk *clock
	rec *Reconciler
}

const pipelineBase = `
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
`

func newEnv(t *testing.T, loc, rebuild string) *env {
	t.Helper()
	ctx := context.Background()
	// Monday 2026-11-30 10:00 UTC
	clk := &clock{t: time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)}
	cat, err := catalog.Open(ctx, loc, catalog.WithClock(clk.Now))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	f, err := config.Parse([]byte(pipelineBase+rebuild), "pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	// the tests promote without a test gate: prod asks for an artifact here
	if err := cat.SetRequirements(ctx, "web", "prod", []catalog.Requirement{{Kind: catalog.KindArtifact}}); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, cat: cat, clk: clk}
	e.rec = &Reconciler{File: f, Catalog: cat, Now: clk.Now, Events: &events.Emitter{Cat: cat, Now: clk.Now}}
	return e
}

func (e *env) version(image, version string, parent *catalog.Ref) {
	e.t.Helper()
	if err := addVersion(e.ctx, e.cat, catalog.NewVersion{Image: image, Version: version, Parent: parent}); err != nil {
		e.t.Fatal(err)
	}
}

func addVersion(ctx context.Context, cat *catalog.Catalog, nv catalog.NewVersion) error {
	if _, err := cat.AddVersion(ctx, nv); err != nil {
		return err
	}
	_, err := cat.PutCopy(ctx, catalog.Ref{Image: nv.Image, Version: nv.Version},
		catalog.Copy{Kind: catalog.KindArtifact, ResourceID: "/build/" + nv.Image + "-" + nv.Version + ".vhdx", State: catalog.StatePresent})
	return err
}

func (e *env) promote(version string) {
	e.t.Helper()
	if _, err := e.cat.Promote(e.ctx, catalog.PromoteRequest{Ref: catalog.Ref{Image: "web", Version: version}, Channel: "prod", By: "test"}); err != nil {
		e.t.Fatal(err)
	}
}

// hosts reports n hosts of web@version, the first drifted of them drifted
// with files changed files and pkgs package changes.
func (e *env) hosts(prefix, version string, n, drifted, files, pkgs int) {
	e.t.Helper()
	for i := 0; i < n; i++ {
		st := map[string]any{"source": "agent", "drifted": false, "summary": map[string]int{}}
		if i < drifted {
			st = map[string]any{"source": "agent", "drifted": true, "summary": map[string]int{"files_changed": files, "packages": pkgs}}
		}
		raw, _ := json.Marshal(st)
		if err := e.cat.ReportHost(e.ctx, catalog.Host{Name: fmt.Sprintf("%s-%02d", prefix, i), Platform: catalog.PlatformOnprem,
			Image: "web", Version: version, DriftSummary: raw}); err != nil {
			e.t.Fatal(err)
		}
	}
}

func (e *env) decide() Decision {
	e.t.Helper()
	ds, err := e.rec.Decide(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	if len(ds) != 1 {
		e.t.Fatalf("decisions %+v", ds)
	}
	return ds[0]
}

func (e *env) record(d Decision) Decision {
	e.t.Helper()
	out, err := e.rec.Record(e.ctx, []Decision{d})
	if err != nil {
		e.t.Fatal(err)
	}
	return out[0]
}

func (e *env) count(table string) int {
	e.t.Helper()
	var n int
	if err := e.cat.DB().QueryRowContext(e.ctx, "SELECT COUNT(*) FROM "+table).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// fakeRunner is the pipeline as the reconciler sees it.
type fakeRunner struct {
	e                         *env
	mu                        sync.Mutex
	builds, publishes, tests  int
	promoted                  []string
	buildErr, testErr         error
	buildStarted, buildResume chan struct{} // non-nil: Build waits for buildResume
}

func (f *fakeRunner) Build(ctx context.Context, img *config.Image) (string, error) {
	f.mu.Lock()
	f.builds++
	f.mu.Unlock()
	if f.buildStarted != nil {
		close(f.buildStarted)
		<-f.buildResume
	}
	return "/tmp/web.vhdx", f.buildErr
}

func (f *fakeRunner) Publish(ctx context.Context, img *config.Image, artifact string) (string, int64, error) {
	f.mu.Lock()
	f.publishes++
	f.mu.Unlock()
	vs, err := f.e.cat.Versions(ctx, img.Name)
	if err != nil {
		return "", 0, err
	}
	next := fmt.Sprintf("1.0.%d", len(vs))
	run, err := f.e.cat.StartRun(ctx, catalog.Run{Kind: "publish", Image: img.Name, Version: next, By: "reconcile"})
	if err != nil {
		return "", 0, err
	}
	if err := addVersion(ctx, f.e.cat, catalog.NewVersion{Image: img.Name, Version: next}); err != nil {
		return "", run.ID, err
	}
	return next, run.ID, f.e.cat.FinishRun(ctx, run.ID, nil)
}

func (f *fakeRunner) Test(ctx context.Context, ref catalog.Ref) error {
	f.mu.Lock()
	f.tests++
	f.mu.Unlock()
	return f.testErr
}

func (f *fakeRunner) Promote(ctx context.Context, ref catalog.Ref, channel string) error {
	f.promoted = append(f.promoted, ref.String()+"->"+channel)
	_, err := f.e.cat.Promote(ctx, catalog.PromoteRequest{Ref: ref, Channel: channel, By: "reconcile"})
	return err
}

func TestReconcileSQLite(t *testing.T) {
	runSuite(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") })
}

func TestReconcilePostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	runSuite(t, func(t *testing.T) string { return pg.NewDatabase(t) })
}

func runSuite(t *testing.T, loc func(t *testing.T) string) {
	t.Run("Decisions", func(t *testing.T) { testDecisions(t, loc) })
	t.Run("DriftMustPersist", func(t *testing.T) { testDriftMustPersist(t, loc(t)) })
	t.Run("DriftWithoutHistory", func(t *testing.T) { testDriftWithoutHistory(t, loc(t)) })
	t.Run("RebuildThenCooldownThenCap", func(t *testing.T) { testCooldownAndCap(t, loc(t)) })
	t.Run("FailedTestStopsTheLoop", func(t *testing.T) { testFailedTestStops(t, loc(t)) })
	t.Run("NoGateNeverPromotes", func(t *testing.T) { testNoGate(t, loc(t)) })
	t.Run("SecondTriggerDuringARun", func(t *testing.T) { testSecondTrigger(t, loc(t)) })
	t.Run("DecideChangesNothing", func(t *testing.T) { testDecideChangesNothing(t, loc(t)) })
	t.Run("RepeatedWaitNotRecorded", func(t *testing.T) { testRepeatedWait(t, loc(t)) })
	t.Run("DeadClaimant", func(t *testing.T) { testDeadClaimant(t, loc(t)) })
	t.Run("ReplicasTakeTurns", func(t *testing.T) { testReplicasTakeTurns(t, loc(t)) })
}

func testDecisions(t *testing.T, loc func(t *testing.T) string) {
	for _, tc := range []struct {
		name, policy string
		setup        func(e *env)
		action       string
		trigger      string
		reason       string
	}{
		{"drift below the share", `rebuild {
  on_drift {
    share = 0.3
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 10, 2, 1, 0) }, ActionNone, "", "2 of 10 prod hosts drifted (3 needed): nothing to do"},
		{"drift at the share, at once", `rebuild {
  on_drift {
    share = 0.3
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 10, 3, 1, 0) }, catalog.DecisionRebuild, TriggerDrift, "3 of 10 prod hosts drifted: rebuild"},
		{"drift counts hosts by number", `rebuild {
  on_drift {
    hosts = 12
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 40, 12, 1, 0) }, catalog.DecisionRebuild, TriggerDrift, "12 of 40 prod hosts drifted: rebuild"},
		{"hosts of other channels' versions do not count", `rebuild {
  on_drift {
    hosts = 2
  }
}`, func(e *env) {
			e.version("web", "1.1.0", nil)
			e.hosts("h", "1.0.0", 4, 1, 1, 0)
			e.hosts("x", "1.1.0", 4, 4, 1, 0)
		},
			ActionNone, "", "1 of 4 prod hosts drifted (2 needed)"},
		{"changed_files: small drift does not count", `rebuild {
  on_drift {
    hosts         = 2
    changed_files = 5
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 4, 4, 4, 0) }, ActionNone, "", "0 of 4 prod hosts drifted (2 needed)"},
		{"changed_files: enough files count", `rebuild {
  on_drift {
    hosts         = 2
    changed_files = 5
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 4, 2, 5, 0) }, catalog.DecisionRebuild, TriggerDrift, "2 of 4 prod hosts drifted: rebuild"},
		{"packages: package changes count", `rebuild {
  on_drift {
    hosts    = 2
    packages = true
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 4, 3, 0, 1) }, catalog.DecisionRebuild, TriggerDrift, "3 of 4 prod hosts drifted: rebuild"},
		{"packages only: file drift does not count", `rebuild {
  on_drift {
    hosts    = 2
    packages = true
  }
}`, func(e *env) { e.hosts("h", "1.0.0", 4, 3, 9, 0) }, ActionNone, "", "0 of 4 prod hosts drifted (2 needed)"},
		{"revoked prod version", `rebuild {
  on_revoke = true
}`, func(e *env) {
			if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
				e.t.Fatal(err)
			}
		}, catalog.DecisionRebuild, TriggerRevoke, "web@1.0.0 revoked: rebuild"},
		{"not revoked", `rebuild {
  on_revoke = true
}`, func(e *env) {}, ActionNone, "", "web@1.0.0 not revoked: nothing to do"},
		{"newer parent", `rebuild {
  on_parent = true
}`, nil, catalog.DecisionRebuild, TriggerParent, "parent base@2.1.0 is newer than 2.0.0: rebuild"},
		{"schedule not yet due", `rebuild {
  schedule = "0 3 * * 1"
}`, func(e *env) {}, ActionNone, "", "schedule 0 3 * * 1 next due 2026-12-07T03:00Z: nothing to do"},
		{"schedule due", `rebuild {
  schedule = "0 3 * * 1"
}`, func(e *env) { e.clk.Advance(7 * 24 * time.Hour) }, catalog.DecisionRebuild, TriggerSchedule, "schedule 0 3 * * 1 due (2026-12-07T03:00Z): rebuild"},
		{"a run holds the image lock", `rebuild {
  on_drift {
    hosts = 1
  }
}`, func(e *env) {
			e.hosts("h", "1.0.0", 2, 1, 1, 0)
			l, err := e.cat.LockImage(e.ctx, "web", "alice")
			if err != nil {
				e.t.Fatal(err)
			}
			e.t.Cleanup(func() { l.Unlock(context.Background()) })
		}, catalog.DecisionWait, TriggerDrift, "1 of 2 prod hosts drifted; a run holds the image lock (a run not yet recorded"},
		{"several triggers name every reason", `rebuild {
  on_revoke = true
  on_drift {
    hosts = 1
  }
}`, func(e *env) {
			e.hosts("h", "1.0.0", 2, 2, 1, 0)
			if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
				e.t.Fatal(err)
			}
		}, catalog.DecisionRebuild, TriggerRevoke, "web@1.0.0 revoked; 2 of 2 prod hosts drifted: rebuild"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, loc(t), tc.policy)
			if tc.setup == nil { // the parent case
				e.version("base", "2.0.0", nil)
				e.version("web", "1.0.0", &catalog.Ref{Image: "base", Version: "2.0.0"})
				e.promote("1.0.0")
				e.version("base", "2.1.0", nil)
			} else {
				e.version("web", "1.0.0", nil)
				e.promote("1.0.0")
				tc.setup(e)
			}
			d := e.decide()
			if d.Action != tc.action || d.Trigger != tc.trigger || !strings.Contains(d.Reason, tc.reason) {
				t.Fatalf("got %s/%s %q\nwant %s/%s %q", d.Action, d.Trigger, d.Reason, tc.action, tc.trigger, tc.reason)
			}
		})
	}
}

func testDriftMustPersist(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_drift {
    hosts = 12
    for   = "2h"
  }
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	e.hosts("h", "1.0.0", 40, 12, 1, 0)
	d := e.record(e.decide())
	if d.Action != catalog.DecisionWait || d.Guard != GuardPersist || d.Reason != "12 of 40 prod hosts drifted since 2026-11-30T10:00Z, the policy wants 2h (until 2026-11-30T12:00Z): wait" || d.ID == 0 {
		t.Fatalf("first sight: %+v", d)
	}
	e.clk.Advance(time.Hour)
	if d := e.record(e.decide()); d.Action != catalog.DecisionWait || !d.Repeated {
		t.Fatalf("after 1h: %+v", d)
	}
	// the threshold dips: persistence starts over
	e.hosts("h", "1.0.0", 40, 11, 1, 0)
	if d := e.record(e.decide()); d.Action != ActionNone {
		t.Fatalf("dip: %+v", d)
	}
	// the twelfth host drifts again at 11:00: from the fleet's per-host
	// history the threshold holds since then, though no evaluation saw it
	// until 12:30
	e.hosts("h", "1.0.0", 40, 12, 1, 0)
	e.clk.Advance(90 * time.Minute)
	if d := e.record(e.decide()); d.Action != catalog.DecisionWait || !strings.Contains(d.Reason, "since 2026-11-30T11:00Z") || !strings.Contains(d.Reason, "(until 2026-11-30T13:00Z)") {
		t.Fatalf("back over: %+v", d)
	}
	e.clk.Advance(30 * time.Minute)
	if d := e.decide(); d.Action != catalog.DecisionRebuild || d.Reason != "12 of 40 prod hosts drifted for 2h: rebuild" {
		t.Fatalf("after 2h: %+v", d)
	}
}

// Hosts whose history does not say since when they drifted (reported
// before it was kept) count from the reconciler's first evaluation that
// saw the threshold met.
func testDriftWithoutHistory(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_drift {
    hosts = 3
    for   = "1h"
  }
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	e.hosts("h", "1.0.0", 5, 3, 1, 0)
	if _, err := e.cat.DB().ExecContext(e.ctx, "UPDATE hosts SET drifted_since = ''"); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(5 * time.Hour) // the reports are old; nothing saw the drift yet
	if d := e.record(e.decide()); d.Action != catalog.DecisionWait || !strings.Contains(d.Reason, "since 2026-11-30T15:00Z") {
		t.Fatalf("first sight: %+v", d)
	}
	e.clk.Advance(time.Hour)
	if d := e.decide(); d.Action != catalog.DecisionRebuild || d.Reason != "3 of 5 prod hosts drifted for 1h: rebuild" {
		t.Fatalf("after 1h: %+v", d)
	}
}

func testCooldownAndCap(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  schedule    = "0 * * * *"
  cooldown    = "3h"
  max_per_day = 2
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	run := &fakeRunner{e: e}
	e.clk.Advance(time.Hour) // 11:00: due
	d := e.decide()
	if d.Action != catalog.DecisionRebuild {
		t.Fatalf("%+v", d)
	}
	out, err := e.rec.Rebuild(e.ctx, d, run)
	if err != nil || out.State != catalog.RebuildSucceeded || out.Version != "1.0.1" || out.Promoted != "prod" || out.RunID == 0 {
		t.Fatalf("rebuild: %+v %v", out, err)
	}
	chs, _ := e.cat.Channels(e.ctx, "web")
	if len(chs) != 1 || chs[0].Version != "1.0.1" {
		t.Fatalf("channels %+v", chs)
	}
	e.clk.Advance(time.Hour) // 12:00: due again, in the cool-down
	if d := e.decide(); d.Action != catalog.DecisionWait || d.Guard != GuardCooldown || d.Reason != "schedule 0 * * * * due (2026-11-30T12:00Z); cool-down until 2026-11-30T14:00Z: wait" {
		t.Fatalf("cool-down: %+v", d)
	}
	e.clk.Advance(2 * time.Hour) // 14:00
	d = e.decide()
	if d.Action != catalog.DecisionRebuild {
		t.Fatalf("after the cool-down: %+v", d)
	}
	if out, err := e.rec.Rebuild(e.ctx, d, run); err != nil || out.State != catalog.RebuildSucceeded {
		t.Fatalf("second rebuild: %+v %v", out, err)
	}
	e.clk.Advance(4 * time.Hour) // 18:00: past the cool-down, the cap holds
	if d := e.decide(); d.Action != catalog.DecisionWait || d.Guard != GuardCap || !strings.HasSuffix(d.Reason, "daily cap 2 reached (until 00:00 UTC): wait") {
		t.Fatalf("cap: %+v", d)
	}
	e.clk.Advance(6 * time.Hour) // 00:00 the next day
	if d := e.decide(); d.Action != catalog.DecisionRebuild {
		t.Fatalf("next day: %+v", d)
	}
	if run.builds != 2 || run.tests != 2 || len(run.promoted) != 2 {
		t.Fatalf("runner %+v", run)
	}
	rebuilds, _ := e.cat.Decisions(e.ctx, catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionRebuild})
	if len(rebuilds) != 2 || rebuilds[0].State != catalog.RebuildSucceeded || rebuilds[0].Version != "1.0.2" || rebuilds[0].RunID == 0 {
		t.Fatalf("recorded %+v", rebuilds)
	}
}

func testFailedTestStops(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
  cooldown  = "1h"
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	run := &fakeRunner{e: e, testErr: errors.New(`check "nginx" exited 3, want 0`)}
	out, err := e.rec.Rebuild(e.ctx, e.decide(), run)
	if err != nil {
		t.Fatal(err)
	}
	want := "web@1.0.1 failed its test: check \"nginx\" exited 3, want 0: stopped until a new version of web is published or `imgpipe reconcile resume web`"
	if out.State != catalog.RebuildFailed || out.Stopped != want || len(run.promoted) != 0 {
		t.Fatalf("outcome %+v promoted %v", out, run.promoted)
	}
	if chs, _ := e.cat.Channels(e.ctx, "web"); chs[0].Version != "1.0.0" {
		t.Fatalf("prod moved: %+v", chs)
	}
	// hours later the trigger still holds, the loop stays stopped
	e.clk.Advance(5 * time.Hour)
	d := e.decide()
	if d.Action != catalog.DecisionStopped || d.Reason != want {
		t.Fatalf("after: %+v", d)
	}
	if _, err := e.rec.Rebuild(e.ctx, d, run); err == nil {
		t.Fatal("a stopped decision was carried out")
	}
	if run.builds != 1 {
		t.Fatalf("builds %d", run.builds)
	}
	// a person resumes: the loop runs again
	if _, err := e.rec.Resume(e.ctx, "web", "alice"); err != nil {
		t.Fatal(err)
	}
	if d := e.decide(); d.Action != catalog.DecisionRebuild {
		t.Fatalf("resumed: %+v", d)
	}
	// a failed build stops it the same way, and never publishes
	run = &fakeRunner{e: e, buildErr: errors.New("packer exited 1")}
	out, err = e.rec.Rebuild(e.ctx, e.decide(), run)
	if err != nil || out.State != catalog.RebuildFailed || run.publishes != 0 || !strings.HasPrefix(out.Stopped, "the rebuild of web failed to build: packer exited 1: stopped") {
		t.Fatalf("build failure %+v %v", out, err)
	}
	// a version published by hand resumes the loop
	e.clk.Advance(time.Minute)
	e.version("web", "2.0.0", nil)
	if d := e.decide(); d.Action == catalog.DecisionStopped {
		t.Fatalf("a new version did not resume: %+v", d)
	}
}

func testNoGate(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	run := &fakeRunner{e: e, testErr: fmt.Errorf("%w: imgpipe test is not available", ErrNoGate)}
	out, err := e.rec.Rebuild(e.ctx, e.decide(), run)
	if err != nil || out.State != catalog.RebuildUnpromoted || len(run.promoted) != 0 ||
		!strings.HasPrefix(out.Stopped, "web@1.0.1 was built and published but not tested (no test gate: imgpipe test is not available), so it is not promoted to prod") {
		t.Fatalf("%+v %v", out, err)
	}
	if chs, _ := e.cat.Channels(e.ctx, "web"); chs[0].Version != "1.0.0" {
		t.Fatalf("prod moved: %+v", chs)
	}
	if d := e.decide(); d.Action != catalog.DecisionStopped {
		t.Fatalf("%+v", d)
	}
}

func testSecondTrigger(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	first := e.decide()
	second := first // the second trigger decided before the first run claimed
	run := &fakeRunner{e: e, buildStarted: make(chan struct{}), buildResume: make(chan struct{})}
	done := make(chan Outcome)
	go func() {
		out, err := e.rec.Rebuild(e.ctx, first, run)
		if err != nil {
			t.Error(err)
		}
		done <- out
	}()
	<-run.buildStarted
	// during the run: a fresh evaluation waits, and a stale rebuild decision claims nothing
	if d := e.decide(); d.Action != catalog.DecisionWait || d.Guard != GuardRunning || !strings.Contains(d.Reason, "a rebuild is running (decision ") {
		t.Fatalf("during the run: %+v", d)
	}
	other := &fakeRunner{e: e}
	out2, err := e.rec.Rebuild(e.ctx, second, other)
	if err != nil || out2.Claimed || out2.Running == nil || other.builds != 0 {
		t.Fatalf("second trigger: %+v %v builds %d", out2, err, other.builds)
	}
	close(run.buildResume)
	out1 := <-done
	if !out1.Claimed || out1.State != catalog.RebuildSucceeded || run.builds != 1 {
		t.Fatalf("first: %+v", out1)
	}
	rebuilds, _ := e.cat.Decisions(e.ctx, catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionRebuild})
	waits, _ := e.cat.Decisions(e.ctx, catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionWait})
	if len(rebuilds) != 1 || len(waits) != 1 || waits[0].State != GuardRunning {
		t.Fatalf("rebuilds %+v waits %+v", rebuilds, waits)
	}
}

func testDecideChangesNothing(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
  on_drift {
    hosts = 1
    for   = "1h"
  }
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	e.hosts("h", "1.0.0", 3, 2, 1, 0)
	tables := []string{"reconcile_decisions", "reconcile_drift", "event_outbox", "runs", "promotions", "versions", "image_locks"}
	before := map[string]int{}
	for _, tb := range tables {
		before[tb] = e.count(tb)
	}
	// persistence comes from the hosts' history, not from what Decide saw
	for i, want := range []string{catalog.DecisionWait, catalog.DecisionRebuild, catalog.DecisionRebuild} {
		if d := e.decide(); d.Action != want {
			t.Fatalf("evaluation %d: %+v", i, d)
		}
		e.clk.Advance(time.Hour)
	}
	for _, tb := range tables {
		if n := e.count(tb); n != before[tb] {
			t.Errorf("%s: %d rows, before %d", tb, n, before[tb])
		}
	}
}

func testRepeatedWait(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
  cooldown  = "2h"
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	l, err := e.cat.LockImage(e.ctx, "web", "alice")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock(context.Background())
	events0 := e.count("event_outbox")
	d1 := e.record(e.decide())
	e.clk.Advance(time.Hour)
	d2 := e.record(e.decide())
	e.clk.Advance(90 * time.Minute)
	d3 := e.record(e.decide())
	if d1.ID == 0 || d1.Repeated || !d2.Repeated || d2.ID != 0 || d3.ID == 0 || d3.Repeated {
		t.Fatalf("d1 %+v\nd2 %+v\nd3 %+v", d1, d2, d3)
	}
	if n := e.count("event_outbox") - events0; n != 2 {
		t.Fatalf("%d events, want 2", n)
	}
	var body []byte
	if err := e.cat.DB().QueryRowContext(e.ctx, "SELECT body FROM event_outbox ORDER BY id DESC LIMIT 1").Scan(&body); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(body), `"type":"`+events.TypeReconcile+`"`) || !strings.Contains(string(body), "a run holds the image lock") {
		t.Fatalf("event %s", body)
	}
}

// A rebuild whose process died (kill -9) does not block the loop: Decide
// sees it gone without writing anything, and the next Rebuild marks it
// abandoned and claims.
func testDeadClaimant(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
  cooldown  = "0s"
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	p := exec.Command("true")
	if err := p.Run(); err != nil {
		t.Fatal(err)
	}
	_, host, _ := strings.Cut(catalog.Claimant(), "@")
	dead, err := e.cat.RecordDecision(e.ctx, catalog.Decision{Image: "web", Decision: catalog.DecisionRebuild, Reason: "r", State: catalog.RebuildRunning,
		Claimant: fmt.Sprintf("%d@%s", p.Process.Pid, host)})
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Minute)
	before := e.count("reconcile_decisions")
	d := e.decide()
	if d.Action != catalog.DecisionRebuild || e.count("reconcile_decisions") != before {
		t.Fatalf("%+v", d)
	}
	var state string
	e.cat.DB().QueryRowContext(e.ctx, "SELECT state FROM reconcile_decisions WHERE id = "+fmt.Sprint(dead.ID)).Scan(&state)
	if state != catalog.RebuildRunning {
		t.Fatalf("Decide wrote %q", state)
	}
	out, err := e.rec.Rebuild(e.ctx, d, &fakeRunner{e: e})
	if err != nil || !out.Claimed || out.State != catalog.RebuildSucceeded {
		t.Fatalf("%+v %v", out, err)
	}
	e.cat.DB().QueryRowContext(e.ctx, "SELECT state FROM reconcile_decisions WHERE id = "+fmt.Sprint(dead.ID)).Scan(&state)
	if state != catalog.RebuildAbandoned {
		t.Fatalf("dead claim is %q", state)
	}
}

// Two serve replicas on one catalog: one round per interval is evaluated,
// by whichever claims it; the rebuild it starts runs build -> publish ->
// test -> promote once.
func testReplicasTakeTurns(t *testing.T, loc string) {
	e := newEnv(t, loc, `rebuild {
  on_revoke = true
  cooldown  = "1h"
}`)
	e.version("web", "1.0.0", nil)
	e.promote("1.0.0")
	if _, err := e.cat.Revoke(e.ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	run := &fakeRunner{e: e}
	a := &Loop{Reconciler: e.rec, Runner: run, Interval: 10 * time.Minute}
	b := &Loop{Reconciler: e.rec, Runner: run, Interval: 10 * time.Minute}
	rd, err := a.Once(e.ctx)
	if err != nil || rd.Skipped || len(rd.Outcomes) != 1 || rd.Outcomes[0].State != catalog.RebuildSucceeded || rd.Failed() {
		t.Fatalf("first round: %+v %v", rd, err)
	}
	if run.builds != 1 || run.tests != 1 || len(run.promoted) != 1 || run.promoted[0] != "web@1.0.1->prod" {
		t.Fatalf("runner %+v", run)
	}
	if rd, err := b.Once(e.ctx); err != nil || !rd.Skipped || len(rd.Decisions) != 0 {
		t.Fatalf("the other replica in the same interval: %+v %v", rd, err)
	}
	e.clk.Advance(10 * time.Minute)
	rd, err = b.Once(e.ctx)
	if err != nil || rd.Skipped || len(rd.Decisions) != 1 || rd.Decisions[0].Action != ActionNone {
		t.Fatalf("the next interval: %+v %v", rd, err)
	}
	if rd, err := a.Once(e.ctx); err != nil || !rd.Skipped {
		t.Fatalf("a, in b's interval: %+v %v", rd, err)
	}
	if run.builds != 1 {
		t.Fatalf("%d builds", run.builds)
	}
}
