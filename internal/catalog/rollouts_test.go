package catalog

import (
	"context"
	"errors"
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
}
