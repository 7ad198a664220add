package azure

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"imgpipe/internal/azemu"
)

// rgResources lists the resources of one resource group, with the group's
// name replaced, so runs in different groups compare.
func (e *testEnv) rgResources(rg string) []string {
	var out []string
	prefix := strings.ToLower("/subscriptions/" + e.sub + "/resourceGroups/" + rg + "/")
	for _, id := range e.resources() {
		if strings.HasPrefix(id, prefix) {
			// each group has its own gallery name (galleryFor): compare as one
			id = strings.Replace(id, "/galleries/"+strings.ToLower(galleryFor(rg)), "/galleries/gal", 1)
			out = append(out, strings.TrimPrefix(id, prefix))
		}
	}
	return out
}

// TestPublishKilledAtEachStepResumes stops a publish at every point where a
// step starts or its mutating call has just been accepted, re-runs it, and
// checks the end state equals an uninterrupted publish, with no duplicates.
func testPublishKilledAtEachStepResumes(t *testing.T, e *testEnv) {
	src := makeDisk(t, "V2", 1)
	desiredIn := func(rg string) *Desired {
		d := e.desired(t, e.pipeline(t, src, "", ""))
		d.Azure.ResourceGroup, d.Azure.Gallery = rg, galleryFor(rg)
		st := *d.Azure.Storage
		st.Container = strings.ToLower(rg) // its own blob too, so every step happens
		d.Azure.Storage = &st
		return d
	}
	// reference run, counting the kill points
	var points []string
	e.pub.OnEvent = func(ev Event) {
		if ev.Phase == "start" || ev.Phase == "begun" {
			points = append(points, ev.Phase+" "+string(ev.Step.Action)+" "+string(ev.Step.Kind))
		}
	}
	if _, err := e.pub.Publish(context.Background(), desiredIn(e.rg+"-ref")); err != nil {
		t.Fatal(err)
	}
	want := e.rgResources(e.rg + "-ref")
	t.Logf("kill points: %v", points)
	if len(points) < 12 {
		t.Fatalf("too few kill points: %v", points)
	}
	for i, point := range points {
		// By default the run is killed right after each step's mutating
		// call was accepted (the hardest point to resume from) and while
		// waiting for replication; IMGPIPE_LONG_TESTS=1 also kills it at
		// the start of every step.
		if os.Getenv("IMGPIPE_LONG_TESTS") == "" && !strings.HasPrefix(point, "begun") && point != "start wait replication" {
			continue
		}
		t.Run(fmt.Sprintf("%02d %s", i, point), func(t *testing.T) {
			rg := fmt.Sprintf("%s-kill-%02d", e.rg, i)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			n := 0
			e.pub.OnEvent = func(ev Event) {
				if ev.Phase == "start" || ev.Phase == "begun" {
					if n == i {
						cancel()
					}
					n++
				}
			}
			_, err := e.pub.Publish(ctx, desiredIn(rg))
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("killed run: %v (events seen %d)", err, n)
			}
			e.pub.OnEvent = nil
			d := desiredIn(rg)
			res, err := e.pub.Publish(context.Background(), d)
			if err != nil {
				t.Fatalf("re-run: %v\n%s", err, Explain(err))
			}
			if got := e.rgResources(rg); !slices.Equal(got, want) {
				t.Fatalf("after kill and re-run:\n got %v\nwant %v", got, want)
			}
			if len(res.Regions) != 3 {
				t.Fatalf("regions %+v", res.Regions)
			}
			// and a third run has nothing left to do
			plan, err := e.pub.Plan(context.Background(), d)
			if err != nil || plan.HasChanges() {
				t.Fatalf("third plan: %v\n%v", err, plan.Text())
			}
		})
	}
}

// TestPublishConvergesUnderFaults: 10% of ARM requests answered 429 or 500,
// and long-running operations that fail midway; publish still converges.
func testPublishConvergesUnderFaults(t *testing.T, e *testEnv) {
	e.pub.Attempts = 12
	ctx := context.Background()
	defer func() {
		st, failed := e.transport.counts()
		t.Logf("answers seen by the SDK: %v; operations reported Failed: %d", st, failed)
		if st[429] == 0 || st[500] == 0 || failed == 0 {
			t.Errorf("the faults were not exercised: %v, %d failed operations", st, failed)
		}
	}()
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			e.emu.Server.SetFaults(azemu.Faults{Seed: seed, Throttle: 0.05, ServerError: 0.05, LROFailure: 0.15})
			d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", byte(seed)), "", ""))
			d.Azure.ResourceGroup = fmt.Sprint(e.rg, "-", seed)
			d.Azure.Gallery = galleryFor(d.Azure.ResourceGroup)
			st := *d.Azure.Storage
			st.Container = strings.ToLower(d.Azure.ResourceGroup)
			d.Azure.Storage = &st
			res, err := e.pub.Publish(ctx, d)
			e.emu.Server.SetFaults(azemu.Faults{})
			if err != nil {
				t.Fatalf("publish under faults: %v\n%s", err, Explain(err))
			}
			t.Logf("converged after %d attempt(s)", res.Attempts)
			plan, err := e.pub.Plan(ctx, d)
			if err != nil || plan.HasChanges() {
				t.Fatalf("after faults: %v\n%s", err, plan.Text())
			}
			if st := e.emu.Server.ProvisioningState(d.id("1.0.0").String()); st != "Succeeded" {
				t.Fatalf("version %s", st)
			}
		})
	}
}
