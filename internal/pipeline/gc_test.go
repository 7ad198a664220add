package pipeline

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// TestWithRetention: the file's retention block fills exactly the fields no
// flag gave.
func TestWithRetention(t *testing.T) {
	grace := 7 * 24 * time.Hour
	r := &config.Retention{KeepLast: 5, KeepWithin: 90 * 24 * time.Hour, GracePeriod: &grace,
		ExcludeTags: map[string]string{"keep": "", "tier": "gold"}, ExcludeRegions: []string{"usgovvirginia"}}
	flags := catalog.Policy{KeepNewest: 3, OlderThan: time.Hour, Grace: 14 * 24 * time.Hour, ExcludeTags: map[string]string{"x": "1"}}
	none := func(string) bool { return false }
	p := WithRetention(flags, r, none)
	if p.KeepNewest != 5 || p.OlderThan != 90*24*time.Hour || p.Grace != grace || p.ExcludeTags["tier"] != "gold" ||
		len(p.ExcludeTags) != 2 || len(p.ExcludeRegions) != 1 {
		t.Fatalf("no flag given: %+v", p)
	}
	p = WithRetention(flags, r, func(f string) bool { return f == "older-than" || f == "exclude-tag" })
	if p.KeepNewest != 5 || p.OlderThan != time.Hour || p.ExcludeTags["x"] != "1" || len(p.ExcludeTags) != 1 {
		t.Fatalf("--older-than and --exclude-tag given: %+v", p)
	}
	if p := WithRetention(flags, nil, none); p.KeepNewest != 3 || p.OlderThan != time.Hour {
		t.Fatalf("no retention block: %+v", p)
	}
}

// TestGCWithoutSubscription plans from the catalog only and refuses to
// apply, returning the plan it would have run and changing nothing.
func TestGCWithoutSubscription(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, v := range []string{"1.0.0", "1.0.1"} {
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "app", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	p := catalog.Policy{KeepNewest: 1, Grace: time.Hour}
	fleet := NewFleet(nil, nil, "")
	if len(fleet.Subscriptions) != 0 {
		t.Fatalf("subscriptions %v", fleet.Subscriptions)
	}
	rep, err := GC(ctx, cat, fleet, p, false, "test")
	if err != nil || rep.AzureConsulted || rep.Result != nil || len(rep.Plan.Steps) == 0 {
		t.Fatalf("plan: %+v %v", rep, err)
	}
	rep, err = GC(ctx, cat, fleet, p, true, "test")
	if !errors.Is(err, ErrNoExecutor) || rep == nil || rep.Plan == nil || rep.Result != nil {
		t.Fatalf("apply without a subscription: %+v %v", rep, err)
	}
	if v, err := cat.Version(ctx, catalog.Ref{Image: "app", Version: "1.0.0"}); err != nil || v.Status != "active" {
		t.Fatalf("1.0.0 after a refused gc: %+v %v", v, err)
	}
	if _, err := GC(ctx, cat, fleet, catalog.Policy{KeepNewest: -1}, false, "test"); err == nil {
		t.Fatal("an invalid policy was accepted")
	}
	f := NewFleet(nil, &config.File{Azure: []config.Azure{{Subscription: "A"}, {Subscription: "a"}}}, "b", "")
	if len(f.Subscriptions) != 2 || f.Subscriptions[0] != "A" || f.Subscriptions[1] != "b" {
		t.Fatalf("subscriptions %v", f.Subscriptions)
	}
}
