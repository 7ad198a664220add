package catalog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"

	"imgpipe/internal/testenv"
)

func TestRolloutsSQLite(t *testing.T) {
	testRollouts(t, "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
}

func TestRolloutsPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	testRollouts(t, pg.NewDatabase(t))
}

func testRollouts(t *testing.T, loc string) {
	ctx := context.Background()
	clk := newClock()
	c := openAt(t, loc, WithClock(clk.Now))
	for _, v := range []string{"1.0.0", "2.0.0"} {
		if _, err := c.AddVersion(ctx, NewVersion{Image: "web", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	const ss = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	if _, err := c.StartRollout(ctx, Ref{Image: "web", Version: "9.9.9"}, RolloutScaleSet, ss); !errors.Is(err, ErrNotFound) {
		t.Fatalf("rollout of an unknown version: %v", err)
	}
	r, err := c.StartRollout(ctx, Ref{Image: "web", Version: "2.0.0"}, RolloutScaleSet, ss)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(1e9)
	members := []RolloutMember{{Member: "10", Version: "1.0.0", State: "pending", Healthy: true}, {Member: "2", Version: "2.0.0", State: "upgraded", Healthy: true}}
	if err := c.UpdateRollout(ctx, r.ID, RolloutRunning, "batch 1", members); err != nil {
		t.Fatal(err)
	}
	members[0] = RolloutMember{Member: "10", Version: "2.0.0", State: "unhealthy"}
	clk.Advance(1e9)
	if err := c.UpdateRollout(ctx, r.ID, RolloutFailed, "unhealthy batch", members); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateRollout(ctx, r.ID, RolloutRunning, "", nil); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of a finished rollout: %v", err)
	}
	if err := c.UpdateRollout(ctx, r.ID+100, RolloutRunning, "", nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of an unknown rollout: %v", err)
	}
	got, err := c.RolloutByID(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != RolloutFailed || got.Detail != "unhealthy batch" || got.Ref.Version != "2.0.0" || got.FinishedAt.IsZero() || !got.UpdatedAt.After(got.StartedAt) {
		t.Fatalf("rollout %+v", got)
	}
	if len(got.Members) != 2 || got.Members[0].Member != "2" || got.Members[1].State != "unhealthy" || got.Members[1].Healthy {
		t.Fatalf("members %+v", got.Members)
	}
	r2, err := c.StartRollout(ctx, Ref{Image: "web", Version: "1.0.0"}, RolloutScaleSet, ss)
	if err != nil {
		t.Fatal(err)
	}
	list, err := c.Rollouts(ctx, "web", 0)
	if err != nil || len(list) != 2 || list[0].ID != r2.ID || len(list[0].Members) != 0 {
		t.Fatalf("list %+v %v", list, err)
	}
	if list, err := c.Rollouts(ctx, "other", 0); err != nil || len(list) != 0 {
		t.Fatalf("other image: %+v %v", list, err)
	}

	// a policy rollout: targets, pause and resume, steps, a rollback link
	pr, err := c.CreateRollout(ctx, NewRollout{Ref: Ref{Image: "web", Version: "2.0.0"}, Kind: RolloutPolicy, Target: "1 scale set, 1 hosts",
		Channel: "prod", Previous: "1.0.0", Policy: []byte(`{"max_batch_percent":25}`),
		Targets: []RolloutTarget{{Target: ss, Kind: RolloutScaleSet, Mode: "Manual"}, {Target: "prod", Kind: RolloutHosts}}})
	if err != nil {
		t.Fatal(err)
	}
	next := clk.Now().Add(30e9)
	save := RolloutSave{State: RolloutPaused, Detail: "batch 1 unhealthy", From: RolloutRunning,
		Events:  []RolloutEvent{{N: 1, Data: "batch 1"}, {N: 2, Data: "unhealthy"}, {N: 3, Data: "paused"}},
		Targets: []RolloutTarget{{Target: ss, Kind: RolloutScaleSet, State: RolloutPaused, Batch: 1, NextAt: next, Mode: "Manual"}, {Target: "prod", Kind: RolloutHosts, State: RolloutRunning}},
		Members: []RolloutMember{{Member: "web_0", Target: ss, Version: "2.0.0", State: "unhealthy"}, {Member: "hv1", Target: "prod", Version: "1.0.0", State: "pending", Plan: "# script", Healthy: true}}}
	if err := c.SaveRollout(ctx, pr.ID, save); err != nil {
		t.Fatal(err)
	}
	if err := c.SaveRollout(ctx, pr.ID, RolloutSave{State: RolloutPaused, KeepTargets: true, From: RolloutRunning}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a pause that raced another: %v", err)
	}
	if err := c.SaveRollout(ctx, pr.ID, RolloutSave{State: "stopped"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unknown state: %v", err)
	}
	got, err = c.RolloutByID(ctx, pr.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != RolloutPaused || got.Steps != 3 || got.Previous != "1.0.0" || got.Channel != "prod" || string(got.Policy) != `{"max_batch_percent":25}` || !got.FinishedAt.IsZero() {
		t.Fatalf("paused rollout %+v", got)
	}
	if len(got.Targets) != 2 || got.Targets[0].Target != ss || got.Targets[0].Batch != 1 || !got.Targets[0].NextAt.Equal(next) || got.Targets[0].Mode != "Manual" {
		t.Fatalf("targets %+v", got.Targets)
	}
	if len(got.Members) != 2 || got.Members[1].Plan != "# script" || got.Members[0].Target != ss {
		t.Fatalf("members %+v", got.Members)
	}
	// a writer that read the rollout before those steps is refused
	if err := c.SaveRollout(ctx, pr.ID, RolloutSave{State: RolloutRunning, KeepTargets: true, Events: []RolloutEvent{{N: 2, Data: "stale"}}}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a stale writer: %v", err)
	}
	// resume keeps the targets when asked to
	if err := c.SaveRollout(ctx, pr.ID, RolloutSave{State: RolloutRunning, KeepTargets: true, Members: got.Members, From: RolloutPaused, Events: []RolloutEvent{{N: 4, Data: "resumed"}}}); err != nil {
		t.Fatal(err)
	}
	if got, _ = c.RolloutByID(ctx, pr.ID); got.State != RolloutRunning || got.Steps != 4 || len(got.Targets) != 2 {
		t.Fatalf("resumed %+v", got)
	}
	if err := c.SaveRollout(ctx, pr.ID, RolloutSave{State: RolloutRolledBack, KeepTargets: true}); err != nil {
		t.Fatal(err)
	}
	rb, err := c.CreateRollout(ctx, NewRollout{Ref: Ref{Image: "web", Version: "1.0.0"}, Kind: RolloutPolicy, Target: "rollback", RollbackOf: pr.ID,
		Event: &RolloutEvent{N: 1, Data: "started"}})
	if err != nil {
		t.Fatal(err)
	}
	if got, _ = c.RolloutByID(ctx, rb.ID); got.RollbackOf != pr.ID || got.Done() || got.Steps != 1 {
		t.Fatalf("rollback %+v", got)
	}
	if got, _ = c.RolloutByID(ctx, pr.ID); !got.Done() || got.FinishedAt.IsZero() {
		t.Fatalf("rolled back %+v", got)
	}
	// every step is an event named by its number, queued with the record
	ids := map[string]bool{}
	for _, e := range outboxRows(t, c) {
		ids[e.ID] = true
	}
	for _, want := range []string{fmt.Sprintf("rollout-%d-step-3", pr.ID), fmt.Sprintf("rollout-%d-step-4", pr.ID), fmt.Sprintf("rollout-%d-step-1", rb.ID)} {
		if !ids[want] {
			t.Errorf("no event %s in the outbox: %v", want, ids)
		}
	}
}
