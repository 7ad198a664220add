package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"testing"

	"imgpipe/internal/testenv"
)

func TestRecordEventsSQLite(t *testing.T) {
	testRecordEvents(t, "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
}

func TestRecordEventsPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	testRecordEvents(t, pg.NewDatabase(t))
}

type queued struct {
	ID, Type, Subject string
	Data              json.RawMessage
	Deliveries        int
}

func outboxRows(t *testing.T, c *Catalog) []queued {
	t.Helper()
	rows, err := c.DB().Query(`SELECT o.event_id, o.type, o.subject, o.body, (SELECT COUNT(*) FROM event_deliveries d WHERE d.outbox_id = o.id)
		FROM event_outbox o ORDER BY o.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []queued
	for rows.Next() {
		var q queued
		var body []byte
		if err := rows.Scan(&q.ID, &q.Type, &q.Subject, &body, &q.Deliveries); err != nil {
			t.Fatal(err)
		}
		var ev struct {
			SpecVersion string          `json:"specversion"`
			ID          string          `json:"id"`
			Data        json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(body, &ev); err != nil || ev.SpecVersion != "1.0" || ev.ID != q.ID {
			t.Fatalf("outbox body %s: %v", body, err)
		}
		q.Data = ev.Data
		out = append(out, q)
	}
	return out
}

// Every writer of a run's end, a promotion or a rollout step emits its
// event in the same transaction; ids come from the records, so a repeated
// rollout update queues nothing new, and a failed write queues nothing.
func testRecordEvents(t *testing.T, loc string) {
	ctx := context.Background()
	c := openAt(t, loc)
	if err := c.PutWebhook(ctx, Webhook{Name: "all", URL: "http://127.0.0.1:1/"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PutWebhook(ctx, Webhook{Name: "rollouts", URL: "http://127.0.0.1:1/r", Types: []string{"dev.imgpipe.rollout."}}); err != nil {
		t.Fatal(err)
	}
	ref := Ref{Image: "web", Version: "1.0.0"}
	if _, err := c.AddVersion(ctx, NewVersion{Image: ref.Image, Version: ref.Version}); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{RunBuild, RunPublish, RunTest, RunGC} {
		r, err := c.StartRun(ctx, Run{Kind: kind, Image: "web", Version: "1.0.0", By: "t"})
		if err != nil {
			t.Fatal(err)
		}
		var runErr error
		if kind == RunTest {
			runErr = errors.New("test smoke failed")
		}
		if err := c.FinishRun(ctx, r.ID, runErr); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.FinishRun(ctx, 999, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finishing an unknown run: %v", err)
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: ref, Channel: "canary", By: "t"}); err != nil {
		t.Fatal(err)
	}
	if p, err := c.Promote(ctx, PromoteRequest{Ref: ref, Channel: "canary", By: "t"}); err != nil || !p.NoOp {
		t.Fatalf("second promotion %+v %v", p, err)
	}
	ro, err := c.StartRollout(ctx, ref, RolloutScaleSet, "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web")
	if err != nil {
		t.Fatal(err)
	}
	ms := []RolloutMember{{Member: "0", Version: "1.0.0", State: "upgraded", Healthy: true}, {Member: "1", Version: "0.9.0", State: "pending", Healthy: true}}
	for range 2 { // a poll that saw nothing new
		if err := c.UpdateRollout(ctx, ro.ID, RolloutRunning, "batch 1", ms); err != nil {
			t.Fatal(err)
		}
	}
	ms[1].Version, ms[1].State = "1.0.0", "upgraded"
	if err := c.UpdateRollout(ctx, ro.ID, RolloutCompleted, "every instance runs 1.0.0", ms); err != nil {
		t.Fatal(err)
	}
	if err := c.UpdateRollout(ctx, ro.ID, RolloutRunning, "again", ms); !errors.Is(err, ErrConflict) {
		t.Fatalf("update of a finished rollout: %v", err)
	}

	got := outboxRows(t, c)
	want := []struct{ typ, subject string }{
		{EventBuild, "web@1.0.0"}, {EventPublish, "web@1.0.0"}, {EventTest, "web@1.0.0"},
		{EventPromotion, "web@1.0.0"},
		{EventRollout, "web@1.0.0"}, {EventRollout, "web@1.0.0"}, {EventRollout, "web@1.0.0"},
	}
	if len(got) != len(want) {
		t.Fatalf("outbox has %d events, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		if got[i].Type != w.typ || got[i].Subject != w.subject {
			t.Errorf("event %d: %s %s, want %s %s", i, got[i].Type, got[i].Subject, w.typ, w.subject)
		}
		deliveries := 1
		if w.typ == EventRollout {
			deliveries = 2
		}
		if got[i].Deliveries != deliveries {
			t.Errorf("event %d (%s): %d deliveries, want %d", i, got[i].Type, got[i].Deliveries, deliveries)
		}
	}
	var test Run
	if err := json.Unmarshal(got[2].Data, &test); err != nil || test.Status != RunFailed || test.Error != "test smoke failed" || test.Kind != RunTest {
		t.Errorf("the test event's data %s: %v", got[2].Data, err)
	}
	if got[2].ID != "run-3-failed" {
		t.Errorf("test event id %q", got[2].ID)
	}
	var p Promotion
	if err := json.Unmarshal(got[3].Data, &p); err != nil || p.Channel != "canary" || p.To != "1.0.0" {
		t.Errorf("the promotion event's data %s: %v", got[3].Data, err)
	}
	var last rolloutStep
	if err := json.Unmarshal(got[6].Data, &last); err != nil || last.State != RolloutCompleted || len(last.Members) != 2 || last.Members[1].Version != "1.0.0" || last.Target == "" {
		t.Errorf("the last rollout step %s: %v", got[6].Data, err)
	}
}
