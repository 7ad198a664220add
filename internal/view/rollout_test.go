package view

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/rollout"
)

const ssID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"

func TestStepLine(t *testing.T) {
	for _, c := range []struct {
		s    rollout.Step
		want string
	}{
		{rollout.Step{Rollout: 2, N: 1, Action: "started"}, "rollout 2 step 1: started"},
		{rollout.Step{Rollout: 2, N: 3, Action: "progress", Target: ssID, Done: 2, Total: 4, Version: "3.0.0"}, "rollout 2 step 3: progress web (2/4 on 3.0.0)"},
		{rollout.Step{Rollout: 2, N: 4, Action: "paused", Target: "hosts:prod@lab", Detail: "unhealthy"}, "rollout 2 step 4: paused hosts:prod@lab: unhealthy"},
	} {
		if got := StepLine(c.s); got != c.want {
			t.Errorf("StepLine(%+v) = %q, want %q", c.s, got, c.want)
		}
	}
}

func TestRolloutText(t *testing.T) {
	at := time.Date(2026, 12, 2, 4, 0, 0, 0, time.UTC)
	r := catalog.Rollout{ID: 3, Ref: catalog.Ref{Image: "web", Version: "2.0.0"}, Target: ssID, State: "paused", StartedAt: at, UpdatedAt: at, Steps: 4,
		Previous: "1.0.0", RollbackOf: 1,
		Targets: []catalog.RolloutTarget{{Target: ssID, Kind: "scale_set", State: "paused", Batch: 1}, {Target: "hosts:prod@lab", Kind: "hosts", State: "running"}},
		Members: []catalog.RolloutMember{{Member: "web_0", Target: ssID, Version: "2.0.0", State: "upgraded", Healthy: true, Plan: "first\nsecond"}}}
	var b bytes.Buffer
	if err := Rollout(&b, false, r, true); err != nil {
		t.Fatal(err)
	}
	want := "rollout 3: web 2.0.0 to " + ssID + ": paused (-)\nstarted 2026-12-02 04:00Z, updated 2026-12-02 04:00Z, 4 steps, rolls back to 1.0.0, rollback of rollout 1\n" +
		"TARGET          KIND       STATE    BATCH  DETAIL\nweb             scale_set  paused   1      -\nhosts:prod@lab  hosts      running  0      -\n" +
		"MEMBER  TARGET  VERSION  STATE     HEALTHY  PLAN\nweb_0   web     2.0.0    upgraded  true     first\n"
	if b.String() != want {
		t.Fatalf("rollout text:\n%s\nwant\n%s", b.String(), want)
	}
	b.Reset()
	if err := Rollouts(&b, true, nil); err != nil || strings.TrimSpace(b.String()) != "[]" {
		t.Fatalf("no rollouts as JSON: %q %v", b.String(), err)
	}
	b.Reset()
	r.Members = append(r.Members, catalog.RolloutMember{Member: "web_1", State: "pending"})
	if err := Rollouts(&b, false, []catalog.Rollout{r}); err != nil || !strings.Contains(b.String(), "  1/2  ") {
		t.Fatalf("rollouts: UPGRADED counts the upgraded members of all:\n%s", b.String())
	}
	b.Reset()
	var got catalog.Rollout
	if err := Rollout(&b, true, r, true); err != nil || json.Unmarshal(b.Bytes(), &got) != nil || got.ID != 3 || len(got.Members) != 2 {
		t.Fatalf("rollout as JSON: %v\n%s", err, b.String())
	}
}
