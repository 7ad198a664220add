package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type fakeInUse struct{ list []InUse }

func (f fakeInUse) VersionsInUse(ctx context.Context) ([]InUse, error) { return f.list, nil }

type fakeExecutor struct {
	mu    sync.Mutex
	calls []string // "deprecate web@1.2.0 gallery_version" / "delete web@1.2.0 blob"
	fail  map[string]bool
}

func (f *fakeExecutor) record(stage string, s GCStep) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	call := fmt.Sprintf("%s %s %s", stage, s.Ref, s.Copy.Kind)
	f.calls = append(f.calls, call)
	if f.fail[call] {
		return errors.New("injected failure")
	}
	return nil
}
func (f *fakeExecutor) Deprecate(ctx context.Context, s GCStep) error {
	return f.record(StageDeprecate, s)
}
func (f *fakeExecutor) Delete(ctx context.Context, s GCStep) error { return f.record(StageDelete, s) }

func stepNames(p *GCPlan) []string {
	var out []string
	for _, s := range p.Steps {
		n := s.Stage + " " + s.Ref.String()
		if s.Copy != nil {
			n += " " + string(s.Copy.Kind)
		}
		out = append(out, n)
	}
	return out
}

func keptReasons(p *GCPlan) map[string]string {
	out := map[string]string{}
	for _, k := range p.Kept {
		key := k.Ref.String()
		if k.Copy != nil {
			key += " " + string(k.Copy.Kind)
		}
		out[key] = strings.Join(k.Reasons, "; ")
	}
	return out
}

// testGC seeds a catalog where each version is kept for one reason (or
// none), plans, deprecates, waits out the grace period, and deletes.
func testGC(t *testing.T, b backend) {
	ctx := context.Background()
	clk := newClock()
	c := openAt(t, b.newLocation(t), WithClock(clk.Now))
	old := clk.Now()

	add := func(ver string, tags map[string]string) Ref {
		mustVersion(t, c, NewVersion{Image: "web", Version: ver, Provenance: Provenance{ArtifactSHA256: ver}, Tags: tags})
		return Ref{"web", ver}
	}
	// Old versions (created at `old`, 100 days before planning).
	v100 := add("1.0.0", nil) // a VM references its gallery version (Azure)
	v101 := add("1.0.1", nil) // replicated to an excluded region
	v105 := add("1.0.5", nil) // goes; its gallery version deletion will fail once
	v110 := add("1.1.0", nil) // a fleet host runs it
	v111 := add("1.1.1", nil) // goes; only an on-prem copy, no gallery version
	v120 := add("1.2.0", nil) // goes; its managed image is 1.3.0's source
	v130 := add("1.3.0", nil) // newest of channel prod
	v140 := add("1.4.0", map[string]string{"keep": "forever"})
	cp100 := publishAll(t, c, v100, "westeurope")
	publishAll(t, c, v101, "westeurope", "usgovvirginia")
	publishAll(t, c, v105, "westeurope")
	publishAll(t, c, v110)
	art := mustCopy(t, c, v111, Copy{Kind: KindArtifact, ResourceID: "build/1.1.1.vhdx", State: StatePresent})
	mustCopy(t, c, v111, Copy{Kind: KindOnprem, ResourceID: `\\lib\web\1.1.1`, State: StatePresent, ParentID: art.ID})
	cp120 := publishAll(t, c, v120)
	// 1.3.0's gallery version was made from 1.2.0's managed image.
	mustCopy(t, c, v130, Copy{Kind: KindGalleryVersion, Location: "westeurope", ResourceID: "gv/1.3.0", State: StateSucceeded, ParentID: cp120[KindManagedImage].ID})
	if l, err := c.Lineage(ctx, v130); err != nil || len(l.Roots) != 1 || l.Roots[0].Source != "managed_image "+cp120[KindManagedImage].ResourceID+" of web@1.2.0" {
		t.Errorf("shared source not named in the lineage: %+v %v", l, err)
	}
	markTested(t, c, v130)
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v130, Channel: "prod", By: "ann"}); err != nil {
		t.Fatal(err)
	}
	publishAll(t, c, v140)
	clk.Advance(95 * 24 * time.Hour)
	v141 := add("1.4.1", nil) // younger than the policy's age
	clk.Advance(5 * 24 * time.Hour)
	add("1.5.0", nil) // the 2 newest
	add("1.6.0", nil)
	if err := c.ReportHost(ctx, Host{Name: "hv-1", Platform: PlatformOnprem, Image: "web", Version: "1.1.0"}); err != nil {
		t.Fatal(err)
	}
	azure := fakeInUse{list: []InUse{{ResourceID: strings.ToUpper(cp100[KindGalleryVersion].ResourceID), By: "vmss/web-prod"}}}
	policy := Policy{KeepNewest: 2, OlderThan: 30 * 24 * time.Hour, ExcludeTags: map[string]string{"keep": ""},
		ExcludeRegions: []string{"USGovVirginia"}, Grace: 14 * 24 * time.Hour}

	plan, err := c.PlanGC(ctx, policy, azure)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deprecate web@1.2.0 gallery_version", "deprecate web@1.1.1", "deprecate web@1.0.5 gallery_version"}
	if got := stepNames(plan); !slices.Equal(got, want) {
		t.Fatalf("first plan:\n got %q\nwant %q", got, want)
	}
	kept := keptReasons(plan)
	for ref, why := range map[string]string{
		"web@1.6.0": "among the 2 newest", "web@1.5.0": "among the 2 newest",
		"web@1.4.1": "younger than 30d", "web@1.4.0": "tag keep=forever is excluded",
		"web@1.3.0": "version of channel prod", "web@1.1.0": "in use by host hv-1",
		"web@1.0.1": "replicated to excluded region usgovvirginia", "web@1.0.0": "in use by vmss/web-prod",
	} {
		if !strings.Contains(kept[ref], why) {
			t.Errorf("kept %s: %q, want it to say %q", ref, kept[ref], why)
		}
	}
	if !plan.Steps[0].EndOfLife.Equal(clk.Now().Add(policy.Grace)) {
		t.Errorf("end of life %v, want now + grace", plan.Steps[0].EndOfLife)
	}
	_ = v141

	// Stage 1: deprecate.
	ex := &fakeExecutor{}
	_, res, err := c.RunGC(ctx, policy, azure, ex, "gc-test")
	if err != nil {
		t.Fatalf("deprecate run: %v", err)
	}
	if len(res.Done) != 3 || !slices.Equal(ex.calls, []string{"deprecate web@1.2.0 gallery_version", "deprecate web@1.0.5 gallery_version"}) {
		t.Errorf("deprecate run: done %d, executor calls %q", len(res.Done), ex.calls)
	}
	v, _ := c.Version(ctx, v120)
	if v.Status != StatusDeprecated || !v.EndOfLife.Equal(clk.Now().Add(policy.Grace)) {
		t.Errorf("1.2.0 after deprecation: %s eol %v", v.Status, v.EndOfLife)
	}
	cps, _ := c.Copies(ctx, v120)
	for _, cp := range cps {
		if cp.Kind == KindGalleryVersion && cp.State != StateDeprecated {
			t.Errorf("1.2.0 gallery version state %s", cp.State)
		}
	}

	// Within the grace period nothing more happens.
	clk.Advance(7 * 24 * time.Hour)
	plan, err = c.PlanGC(ctx, policy, azure)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps) != 0 || len(plan.Waiting) != 3 {
		t.Errorf("plan inside the grace period: steps %q waiting %+v", stepNames(plan), plan.Waiting)
	}

	// Stage 2: after the grace period, delete in dependency order. Meanwhile
	// a host started running 1.1.1: it is kept.
	clk.Advance(8 * 24 * time.Hour)
	if err := c.ReportHost(ctx, Host{Name: "hv-2", Platform: PlatformOnprem, Image: "web", Version: "1.1.1"}); err != nil {
		t.Fatal(err)
	}
	plan, err = c.PlanGC(ctx, policy, azure)
	if err != nil {
		t.Fatal(err)
	}
	want = []string{
		"delete web@1.2.0 gallery_version", "delete web@1.0.5 gallery_version",
		"delete web@1.0.5 managed_image",
		"delete web@1.2.0 blob", "delete web@1.0.5 blob",
		"delete web@1.2.0 onprem", "delete web@1.0.5 onprem",
	}
	if got := stepNames(plan); !slices.Equal(got, want) {
		t.Fatalf("delete plan:\n got %q\nwant %q", got, want)
	}
	kept = keptReasons(plan)
	if !strings.Contains(kept["web@1.2.0 managed_image"], "source still needed by gallery_version gv/1.3.0 of web@1.3.0") {
		t.Errorf("1.2.0's managed image: %q", kept["web@1.2.0 managed_image"])
	}
	if !strings.Contains(kept["web@1.1.1"], "in use by host hv-2") {
		t.Errorf("1.1.1 kept: %q", kept["web@1.1.1"])
	}

	// One deletion fails: the sources of that gallery version are not touched.
	ex = &fakeExecutor{fail: map[string]bool{"delete web@1.0.5 gallery_version": true}}
	_, res, err = c.RunGC(ctx, policy, azure, ex, "gc-test")
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("run with a failing deletion: %v", err)
	}
	wantCalls := []string{"delete web@1.2.0 gallery_version", "delete web@1.0.5 gallery_version", "delete web@1.2.0 blob",
		"delete web@1.2.0 onprem", "delete web@1.0.5 onprem"}
	if !slices.Equal(ex.calls, wantCalls) {
		t.Errorf("executor calls:\n got %q\nwant %q", ex.calls, wantCalls)
	}
	if len(res.Skipped) != 2 {
		t.Errorf("skipped: %q", res.Skipped)
	}
	runs, _ := c.Runs(ctx, RunFilter{Kind: RunGC})
	if len(runs) != 2 || runs[0].Status != RunFailed || len(runs[0].Steps) != 7 {
		t.Errorf("gc runs: %+v", runs)
	}
	// 1.2.0 keeps its managed image (needed), so it is not fully deleted.
	v, _ = c.Version(ctx, v120)
	if v.Status != StatusDeprecated {
		t.Errorf("1.2.0 status %s, want deprecated (its managed image remains)", v.Status)
	}
	cps, _ = c.Copies(ctx, v120)
	for _, cp := range cps {
		want := StateDeleted
		switch cp.Kind {
		case KindArtifact:
			want = StatePresent
		case KindManagedImage:
			want = StateSucceeded
		}
		if cp.State != want {
			t.Errorf("1.2.0 %s: state %s, want %s", cp.Kind, cp.State, want)
		}
	}

	// The retry finishes 1.0.5 in order and marks it deleted.
	ex = &fakeExecutor{}
	if _, _, err = c.RunGC(ctx, policy, azure, ex, "gc-test"); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ex.calls, []string{"delete web@1.0.5 gallery_version", "delete web@1.0.5 managed_image", "delete web@1.0.5 blob"}) {
		t.Errorf("retry calls: %q", ex.calls)
	}
	v, _ = c.Version(ctx, v105)
	if v.Status != StatusDeleted {
		t.Errorf("1.0.5 status %s, want deleted", v.Status)
	}
	regions, _ := c.Copies(ctx, v105)
	for _, cp := range regions {
		if cp.Kind == KindRegion && cp.State != StateDeleted {
			t.Errorf("region %s of a deleted gallery version: %s", cp.Location, cp.State)
		}
	}
	// Nothing is left to do: 1.2.0 stays deprecated with its needed managed image.
	plan, err = c.PlanGC(ctx, policy, azure)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Steps) != 0 {
		t.Errorf("plan after everything ran: %q", stepNames(plan))
	}
	// Nothing kept was ever touched.
	for _, ref := range []Ref{v100, v101, v110, v130, v140} {
		cps, _ := c.Copies(ctx, ref)
		for _, cp := range cps {
			if cp.State == StateDeleted || cp.State == StateDeprecated {
				t.Errorf("%s %s of a kept version is %s", ref, cp.Kind, cp.State)
			}
		}
	}
	_ = old
	if err := (Policy{KeepNewest: -1}).Validate(); err == nil {
		t.Errorf("negative keep accepted")
	}
	if _, _, err := c.RunGC(ctx, policy, azure, nil, "x"); err == nil {
		t.Errorf("RunGC without executor accepted")
	}
}
