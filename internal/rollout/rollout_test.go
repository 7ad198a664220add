package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
)

// env is azemu with a gallery definition holding 1.0.0..3.0.0, a catalog
// recording them, and a driver connected to both.
type env struct {
	az    *azemutest.Env
	fleet *azemutest.Fleet
	cat   *catalog.Catalog
	c     *azure.Clients
	d     *Driver
	steps []Step
}

func newEnv(t *testing.T) *env {
	t.Helper()
	az := azemutest.StartWithAzurite(t, azemu.Options{LRODelay: 150 * time.Millisecond, RetryAfter: 50 * time.Millisecond, ReplicationDuration: 100 * time.Millisecond})
	e := &env{az: az, fleet: azemutest.NewFleet(t, az, "roll", "1.0.0", "2.0.0", "3.0.0")}
	ctx := context.Background()
	var err error
	e.cat, err = catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.cat.Close() })
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		if _, err := e.cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.cat.PutCopy(ctx, catalog.Ref{Image: "web", Version: v}, catalog.Copy{Kind: catalog.KindGalleryVersion, Location: "westeurope", ResourceID: e.fleet.VersionID(v)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.cat.PutWebhook(ctx, catalog.Webhook{Name: "rollouts", URL: "http://127.0.0.1:1/hook", Types: []string{"dev.imgpipe.rollout."}}); err != nil {
		t.Fatal(err)
	}
	if e.c, err = azure.NewClients(az.SubscriptionID, az.Credential(), az.ClientOptions()); err != nil {
		t.Fatal(err)
	}
	e.d = &Driver{Cat: e.cat, Poll: 50 * time.Millisecond, Report: func(s Step) { e.steps = append(e.steps, s) },
		Azure: func(_ context.Context, sub string) (*azure.Clients, error) {
			if sub != strings.ToLower(az.SubscriptionID) {
				return nil, errors.New("unknown subscription " + sub)
			}
			return e.c, nil
		}}
	return e
}

// TestRollouts runs the driver against one emulator (its start is most of
// the cost); each part uses its own scale sets and VMs.
func TestRollouts(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, *env)
	}{
		{"ManualScaleSetBatches", testManualScaleSetBatches},
		{"RollbackOfPausedRollout", testRollbackOfPausedRollout},
		{"RollingScaleSet", testRollingScaleSet},
		{"RollingUnhealthyPauses", testRollingUnhealthyPauses},
		{"PauseBetweenBatches", testPauseBetweenBatches},
		{"LatestModel", testLatestModel},
		{"StandaloneVMPlan", testStandaloneVMPlan},
		{"StartErrors", testStartErrors},
	} {
		e.steps = nil
		e.az.Server.SetFaults(azemu.Faults{})
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, e) })
	}
}

func ref(v string) catalog.Ref { return catalog.Ref{Image: "web", Version: v} }

// onVersion counts the members of r that run v.
func onVersion(r catalog.Rollout, v string) int {
	n := 0
	for _, m := range r.Members {
		if m.Version == v {
			n++
		}
	}
	return n
}

// instances reads the scale set's instances straight from the emulator.
func (e *env) instances(t *testing.T, id string) []azure.RolloutInstance {
	t.Helper()
	v, err := azure.ReadScaleSet(context.Background(), e.c, id, "")
	if err != nil {
		t.Fatal(err)
	}
	return v.Insts
}

func versionsOf(insts []azure.RolloutInstance) map[string]int {
	out := map[string]int{}
	for _, in := range insts {
		out[in.ExactVersion]++
	}
	return out
}

// TestManualScaleSetBatches: a Manual scale set of 4 rolls in batches of one
// (25%), one batch per Advance, each recorded; an unhealthy version pauses
// after its first batch; resume (once healthy) finishes it; rollback
// returns every instance to the previous version.
func testManualScaleSetBatches(t *testing.T, e *env) {
	ctx := context.Background()
	ss := e.fleet.ScaleSet(t, "web", e.fleet.VersionID("1.0.0"), 4, armcompute.UpgradeModeManual, nil)
	zero := 0
	pol := Policy{ScaleSets: []string{ss}, MaxBatchPercent: 25, MaxUnhealthyPercent: &zero}

	r, err := e.d.Start(ctx, pol, ref("2.0.0"), StartOptions{Previous: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if r.State != catalog.RolloutRunning || len(r.Targets) != 1 || r.Kind != catalog.RolloutScaleSet {
		t.Fatalf("started %+v", r)
	}
	var seen []int
	for range 10 {
		if r, err = e.d.Advance(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, onVersion(r, "2.0.0"))
		if r.Done() {
			break
		}
	}
	if r.State != catalog.RolloutCompleted {
		t.Fatalf("rollout %s (%s) after %v", r.State, r.Detail, seen)
	}
	if want := []int{1, 2, 3, 4}; !equalInts(seen[:4], want) {
		t.Fatalf("instances on 2.0.0 after each Advance: %v, want %v", seen, want)
	}
	if got := versionsOf(e.instances(t, ss)); got["2.0.0"] != 4 {
		t.Fatalf("azemu instances %v", got)
	}
	if r.Targets[0].Batch != 4 || r.Targets[0].Mode != "Manual" {
		t.Fatalf("target %+v", r.Targets[0])
	}
	got, _ := e.cat.RolloutByID(ctx, r.ID)
	if got.State != catalog.RolloutCompleted || len(got.Members) != 4 || got.Members[0].Member != "web_0" || got.Members[3].State != azure.InstanceUpgraded {
		t.Fatalf("recorded %+v", got)
	}

	// an unhealthy version: the first batch fails health, the rollout pauses
	e.az.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
	r3, err := e.d.Start(ctx, pol, ref("3.0.0"), StartOptions{Previous: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	r3, err = e.d.Run(ctx, r3.ID)
	if !errors.Is(err, ErrUnhealthy) || r3.State != catalog.RolloutPaused {
		t.Fatalf("unhealthy rollout: %v, %s", err, r3.State)
	}
	if !strings.Contains(r3.Detail, "web_0") && !strings.Contains(r3.Detail, "(0)") {
		t.Fatalf("pause detail does not name the instance: %s", r3.Detail)
	}
	if got := versionsOf(e.instances(t, ss)); got["3.0.0"] != 1 || got["2.0.0"] != 3 {
		t.Fatalf("after the unhealthy batch: %v, want 1 on 3.0.0 and 3 left on 2.0.0", got)
	}
	// a paused rollout does not move
	if again, err := e.d.Advance(ctx, r3.ID); err != nil || again.Steps != r3.Steps {
		t.Fatalf("advance of a paused rollout: %v, steps %d -> %d", err, r3.Steps, again.Steps)
	}
	// fixed: resume continues to the end
	e.az.Server.SetFaults(azemu.Faults{})
	if r3, err = e.d.Resume(ctx, r3.ID); err != nil {
		t.Fatal(err)
	}
	if r3, err = e.d.Run(ctx, r3.ID); err != nil || r3.State != catalog.RolloutCompleted {
		t.Fatalf("resumed rollout: %v, %s %s", err, r3.State, r3.Detail)
	}
	if got := versionsOf(e.instances(t, ss)); got["3.0.0"] != 4 {
		t.Fatalf("after resume: %v", got)
	}

	// rollback: every instance back on 2.0.0
	rb, err := e.d.Rollback(ctx, r3.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rb.Ref.Version != "2.0.0" || rb.RollbackOf != r3.ID || rb.Previous != "3.0.0" {
		t.Fatalf("rollback %+v", rb)
	}
	if rb, err = e.d.Run(ctx, rb.ID); err != nil || rb.State != catalog.RolloutCompleted {
		t.Fatalf("rollback run: %v, %s %s", err, rb.State, rb.Detail)
	}
	if got := versionsOf(e.instances(t, ss)); got["2.0.0"] != 4 {
		t.Fatalf("after rollback: %v", got)
	}

	// steps were events, numbered per rollout, in the outbox
	if len(e.steps) == 0 || e.steps[0].Action != "started" {
		t.Fatalf("steps %+v", e.steps)
	}
	var actions []string
	for _, s := range e.steps {
		if s.Rollout == r3.ID {
			actions = append(actions, s.Action)
		}
	}
	for _, want := range []string{"started", "paused", "resumed", "completed"} {
		if !containsStr(actions, want) {
			t.Fatalf("rollout %d steps %v: no %s", r3.ID, actions, want)
		}
	}
	// numbered 1..n per rollout, as many as recorded, each queued for the webhook
	total, next := 0, map[int64]int{}
	for _, s := range e.steps {
		next[s.Rollout]++
		if s.N != next[s.Rollout] {
			t.Fatalf("rollout %d: step %d after %d", s.Rollout, s.N, next[s.Rollout]-1)
		}
		total++
	}
	for id, n := range next {
		if got, _ := e.cat.RolloutByID(ctx, id); got.Steps != n {
			t.Fatalf("rollout %d records %d steps, reported %d", id, got.Steps, n)
		}
	}
	st, err := e.cat.Outbox(ctx)
	if err != nil || len(st) != 1 || st[0].Pending != total {
		t.Fatalf("outbox %+v (%v), want %d pending rollout events", st, err, total)
	}
}

// TestRollbackOfPausedRollout: rolling back an unhealthy, paused rollout
// ends it as rolled back and moves the upgraded instance back.
func testRollbackOfPausedRollout(t *testing.T, e *env) {
	ctx := context.Background()
	ss := e.fleet.ScaleSet(t, "back", e.fleet.VersionID("2.0.0"), 3, armcompute.UpgradeModeManual, &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](34)})
	e.az.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
	r, err := e.d.Start(ctx, Policy{ScaleSets: []string{ss}}, ref("3.0.0"), StartOptions{Previous: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.d.Run(ctx, r.ID); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("run: %v %s", err, r.Detail)
	}
	// the scale set's own policy: batch 34% of 3 = 1; unhealthy default 20%
	if got := versionsOf(e.instances(t, ss)); got["3.0.0"] != 1 {
		t.Fatalf("after the unhealthy batch: %v", got)
	}
	rb, err := e.d.Rollback(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if old, _ := e.cat.RolloutByID(ctx, r.ID); old.State != catalog.RolloutRolledBack {
		t.Fatalf("rolled back rollout is %s", old.State)
	}
	if rb, err = e.d.Run(ctx, rb.ID); err != nil || rb.State != catalog.RolloutCompleted {
		t.Fatalf("rollback: %v %s %s", err, rb.State, rb.Detail)
	}
	if got := versionsOf(e.instances(t, ss)); got["2.0.0"] != 3 {
		t.Fatalf("after rollback: %v", got)
	}
	if _, err := e.d.Rollback(ctx, r.ID); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("second rollback: %v", err)
	}
}

// TestRollingScaleSet: a Rolling scale set follows Azure's rolling upgrade
// with the policy written into the scale set; a pause cancels the upgrade
// between batches, resume starts a new one that finishes.
func testRollingScaleSet(t *testing.T, e *env) {
	ctx := context.Background()
	ss := e.fleet.ScaleSet(t, "roll", e.fleet.VersionID("1.0.0"), 4, armcompute.UpgradeModeRolling, nil)
	pol := Policy{ScaleSets: []string{ss}, MaxBatchPercent: 50, Pause: 300 * time.Millisecond}
	r, err := e.d.Start(ctx, pol, ref("2.0.0"), StartOptions{Previous: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for range 100 {
		if r, err = e.d.Advance(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		seen[onVersion(r, "2.0.0")] = true
		if r.Done() {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if r.State != catalog.RolloutCompleted || r.Targets[0].Mode != "Rolling" {
		t.Fatalf("rolling rollout %s: %s", r.State, r.Detail)
	}
	if !seen[2] || seen[1] || seen[3] {
		t.Fatalf("instances on 2.0.0 seen %v: want batches of 2 (50%% of 4)", seen)
	}
	v, err := azure.ReadScaleSet(ctx, e.c, ss, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if v.Policy.MaxBatchPercent != 50 || v.Policy.Pause != 300*time.Millisecond || !azure.SameID(v.ModelRef, e.fleet.VersionID("2.0.0")) {
		t.Fatalf("scale set after the rollout: %+v", v)
	}

	// pause in the middle: the rolling upgrade is cancelled after batch 1
	r, err = e.d.Start(ctx, pol, ref("3.0.0"), StartOptions{Previous: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	for range 100 {
		if r, err = e.d.Advance(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		if onVersion(r, "3.0.0") >= 2 {
			break
		}
		time.Sleep(30 * time.Millisecond)
	}
	if r, err = e.d.Pause(ctx, r.ID, "hold for the change freeze"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // longer than a batch and the pause
	if got := versionsOf(e.instances(t, ss)); got["3.0.0"] != 2 {
		t.Fatalf("paused rollout moved on: %v", got)
	}
	if r.State != catalog.RolloutPaused || r.Detail != "hold for the change freeze" {
		t.Fatalf("paused %s %s", r.State, r.Detail)
	}
	if _, err := e.d.Pause(ctx, r.ID, ""); !errors.Is(err, catalog.ErrConflict) {
		t.Fatalf("pause of a paused rollout: %v", err)
	}
	if r, err = e.d.Resume(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if r, err = e.d.Run(ctx, r.ID); err != nil || r.State != catalog.RolloutCompleted {
		t.Fatalf("resumed: %v %s %s", err, r.State, r.Detail)
	}
	if got := versionsOf(e.instances(t, ss)); got["3.0.0"] != 4 {
		t.Fatalf("after resume: %v", got)
	}
}

// testRollingUnhealthyPauses: Azure faults the rolling upgrade after the
// first batch (its instances report unhealthy): the rollout pauses and says
// which scale set, version and instances.
func testRollingUnhealthyPauses(t *testing.T, e *env) {
	ctx := context.Background()
	ss := e.fleet.ScaleSet(t, "bad", e.fleet.VersionID("2.0.0"), 4, armcompute.UpgradeModeRolling,
		&armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](25), MaxUnhealthyInstancePercent: to.Ptr[int32](50)})
	e.az.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
	r, err := e.d.Start(ctx, Policy{ScaleSets: []string{ss}}, ref("3.0.0"), StartOptions{Previous: "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	r, err = e.d.Run(ctx, r.ID)
	if !errors.Is(err, ErrUnhealthy) || r.State != catalog.RolloutPaused {
		t.Fatalf("rolling rollout to an unhealthy version: %v %s", err, r.State)
	}
	for _, want := range []string{"bad", "3.0.0", "unhealthy", "MaxUnhealthyUpgradedInstancePercent"} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("error does not say %q: %v", want, err)
		}
	}
	bad, old := 0, 0
	for _, m := range r.Members {
		switch {
		case m.State == azure.InstanceUnhealthy && m.Version == "3.0.0" && !m.Healthy:
			bad++
		case m.State == azure.InstancePending && m.Version == "2.0.0":
			old++
		default:
			t.Fatalf("member %+v", m)
		}
	}
	if bad != 1 || old != 3 {
		t.Fatalf("%d unhealthy on 3.0.0, %d left on 2.0.0; want 1 and 3 (the first batch stops it)", bad, old)
	}
}

// testPauseBetweenBatches: a Manual scale set's next batch waits for the
// policy's pause; an Advance during it does nothing and records nothing.
func testPauseBetweenBatches(t *testing.T, e *env) {
	ctx := context.Background()
	now := time.Now()
	d := *e.d
	d.Now = func() time.Time { return now }
	ss := e.fleet.ScaleSet(t, "slow", e.fleet.VersionID("1.0.0"), 2, armcompute.UpgradeModeManual, nil)
	r, err := d.Start(ctx, Policy{ScaleSets: []string{ss}, MaxBatchPercent: 50, Pause: time.Hour}, ref("2.0.0"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = d.Advance(ctx, r.ID); err != nil || onVersion(r, "2.0.0") != 1 || !r.Targets[0].NextAt.Equal(now.Add(time.Hour)) {
		t.Fatalf("first batch: %v, %d on 2.0.0, next at %v", err, onVersion(r, "2.0.0"), r.Targets[0].NextAt)
	}
	steps := r.Steps
	now = now.Add(59 * time.Minute)
	if r, err = d.Advance(ctx, r.ID); err != nil || onVersion(r, "2.0.0") != 1 || r.Steps != steps {
		t.Fatalf("during the pause: %v, %d on 2.0.0, steps %d -> %d", err, onVersion(r, "2.0.0"), steps, r.Steps)
	}
	if got := versionsOf(e.instances(t, ss)); got["2.0.0"] != 1 {
		t.Fatalf("an instance was upgraded during the pause: %v", got)
	}
	now = now.Add(time.Minute)
	if r, err = d.Advance(ctx, r.ID); err != nil || r.State != catalog.RolloutCompleted || onVersion(r, "2.0.0") != 2 {
		t.Fatalf("after the pause: %v %s %s", err, r.State, r.Detail)
	}
}

// TestLatestModel: a model on the definition is left alone when latest is
// the version, and pinned to the version when latest is another.
func testLatestModel(t *testing.T, e *env) {
	ctx := context.Background()
	ss := e.fleet.ScaleSet(t, "lat", e.fleet.DefID, 2, armcompute.UpgradeModeManual, nil)
	r, err := e.d.Start(ctx, Policy{ScaleSets: []string{ss}}, ref("3.0.0"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.d.Run(ctx, r.ID); err != nil || r.State != catalog.RolloutCompleted {
		t.Fatalf("rollout to latest: %v %s", err, r.Detail)
	}
	v, _ := azure.ReadScaleSet(ctx, e.c, ss, "3.0.0")
	if !azure.SameID(v.ModelRef, e.fleet.DefID) {
		t.Fatalf("the model on the definition was rewritten: %s", v.ModelRef)
	}
	r, err = e.d.Start(ctx, Policy{ScaleSets: []string{ss}}, ref("2.0.0"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.d.Run(ctx, r.ID); err != nil || r.State != catalog.RolloutCompleted {
		t.Fatalf("rollout to an older version: %v %s", err, r.Detail)
	}
	v, _ = azure.ReadScaleSet(ctx, e.c, ss, "2.0.0")
	if !azure.SameID(v.ModelRef, e.fleet.VersionID("2.0.0")) || versionsOf(v.Insts)["2.0.0"] != 2 {
		t.Fatalf("model %s, instances %v", v.ModelRef, versionsOf(v.Insts))
	}
}

// TestStandaloneVMPlan: a VM is listed with its replacement plan and the
// check-deploy verdict; it is done when a VM of that id runs the version.
func testStandaloneVMPlan(t *testing.T, e *env) {
	ctx := context.Background()
	vm := e.fleet.VM(t, "db1", e.fleet.VersionID("1.0.0"))
	r, err := e.d.Start(ctx, Policy{VMs: []string{vm}}, ref("2.0.0"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = e.d.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if r.State != catalog.RolloutRunning || len(r.Members) != 1 {
		t.Fatalf("rollout %s %+v", r.State, r.Members)
	}
	m := r.Members[0]
	if m.Member != "db1" || m.State != StateReplace || m.Version != "1.0.0" {
		t.Fatalf("member %+v", m)
	}
	for _, want := range []string{"cannot change a VM's image in place", e.fleet.VersionID("2.0.0"), "westeurope", "can be deployed", "region"} {
		if !strings.Contains(m.Plan, want) {
			t.Fatalf("plan does not say %q:\n%s", want, m.Plan)
		}
	}
	// replaced by hand: delete, make anew from 2.0.0 under the same name
	e.fleet.DeleteVM(t, "db1")
	if r, err = e.d.Advance(ctx, r.ID); err != nil || r.Members[0].State != StateMissing {
		t.Fatalf("while replaced: %v %+v", err, r.Members)
	}
	e.fleet.VM(t, "db1", e.fleet.VersionID("2.0.0"))
	if r, err = e.d.Advance(ctx, r.ID); err != nil || r.State != catalog.RolloutCompleted {
		t.Fatalf("after replacement: %v %s %+v", err, r.State, r.Members)
	}
}

func testStartErrors(t *testing.T, e *env) {
	ctx := context.Background()
	if _, err := e.d.Start(ctx, Policy{}, ref("2.0.0"), StartOptions{}); err == nil || !strings.Contains(err.Error(), "no target") {
		t.Fatalf("no target: %v", err)
	}
	if _, err := e.d.Start(ctx, Policy{ScaleSets: []string{"x"}}, ref("9.9.9"), StartOptions{}); !errors.Is(err, catalog.ErrNotFound) {
		t.Fatalf("unknown version: %v", err)
	}
	if _, err := e.d.Start(ctx, Policy{ScaleSets: []string{"x"}}, ref("2.0.0"), StartOptions{VersionID: e.fleet.VersionID("3.0.0")}); err == nil || !strings.Contains(err.Error(), "is not gallery image version 2.0.0") {
		t.Fatalf("wrong version id: %v", err)
	}
	r, err := e.d.Start(ctx, Policy{ScaleSets: []string{"x"}}, ref("2.0.0"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var pol Policy
	if err := json.Unmarshal(r.Policy, &pol); err != nil || pol.VersionID != e.fleet.VersionID("2.0.0") {
		t.Fatalf("the gallery version was not found in the catalog: %+v %v", pol, err)
	}
	if _, err := e.d.Rollback(ctx, r.ID); err == nil || !strings.Contains(err.Error(), "no previous version") {
		t.Fatalf("rollback without a previous version: %v", err)
	}
	if _, err := e.d.Advance(ctx, r.ID); err == nil || !strings.Contains(err.Error(), "not an Azure resource id") {
		t.Fatalf("bad scale set id: %v", err)
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}
