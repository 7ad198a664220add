package catalog

// The events the catalog emits itself: a record and its event are written
// in one transaction, so every writer of the record emits it (the CLI, the
// reconciler, serve), a crash loses neither without the other, and the
// event's id is derived from the record, so a retry never queues a second
// one and receivers can dedupe on it. internal/events delivers the outbox.

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
)

// Event types (CloudEvents "type", reverse-DNS style).
const (
	EventBuild      = "dev.imgpipe.build.completed"
	EventPublish    = "dev.imgpipe.publish.completed"
	EventTest       = "dev.imgpipe.test.completed"
	EventPromotion  = "dev.imgpipe.promotion"
	EventRevocation = "dev.imgpipe.revocation"
	EventRollout    = "dev.imgpipe.rollout.step"
	EventDrift      = "dev.imgpipe.drift.detected"
)

// EventSource is the CloudEvents source of imgpipe's events.
const EventSource = "urn:imgpipe"

// NewEvent encodes a CloudEvents 1.0 event (structured mode, JSON data).
func NewEvent(id, typ, subject string, at time.Time, data any) (OutboxEvent, error) {
	ev := ce.New(ce.CloudEventsVersionV1)
	ev.SetID(id)
	ev.SetSource(EventSource)
	ev.SetType(typ)
	ev.SetSubject(subject)
	ev.SetTime(at.UTC())
	if err := ev.SetData("application/json", data); err != nil {
		return OutboxEvent{}, fmt.Errorf("event %s: %w", typ, err)
	}
	if err := ev.Validate(); err != nil {
		return OutboxEvent{}, fmt.Errorf("event %s: %w", typ, err)
	}
	body, err := ev.MarshalJSON()
	if err != nil {
		return OutboxEvent{}, fmt.Errorf("event %s: %w", typ, err)
	}
	return OutboxEvent{ID: id, Type: typ, Subject: subject, Body: body}, nil
}

// queueEvent writes e to the outbox with a delivery for every webhook that
// wants its type, inside tx. An event id already queued is a no-op.
func (c *Catalog) queueEvent(ctx context.Context, tx *sql.Tx, e OutboxEvent) error {
	rows, err := tx.QueryContext(ctx, "SELECT name, types FROM webhooks ORDER BY name")
	if err != nil {
		return fmt.Errorf("read webhooks: %w", err)
	}
	var hooks []Webhook
	for rows.Next() {
		var w Webhook
		var types string
		if err := rows.Scan(&w.Name, &types); err != nil {
			rows.Close()
			return err
		}
		if types != "" {
			w.Types = strings.Split(types, ",")
		}
		hooks = append(hooks, w)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var id int64
	err = tx.QueryRowContext(ctx, c.q(`INSERT INTO event_outbox (event_id, type, subject, body, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (event_id) DO NOTHING RETURNING id`), e.ID, e.Type, e.Subject, e.Body, c.nowText()).Scan(&id)
	if err == sql.ErrNoRows {
		return nil // already queued
	}
	if err != nil {
		return fmt.Errorf("queue event %s: %w", e.Type, err)
	}
	for _, h := range hooks {
		if !h.Wants(e.Type) {
			continue
		}
		if _, err := tx.ExecContext(ctx, c.q("INSERT INTO event_deliveries (outbox_id, webhook, next_attempt_at) VALUES (?, ?, ?)"),
			id, h.Name, c.nowText()); err != nil {
			return fmt.Errorf("queue event %s for %s: %w", e.Type, h.Name, err)
		}
	}
	return nil
}

// emitTx encodes and queues one event inside tx.
func (c *Catalog) emitTx(ctx context.Context, tx *sql.Tx, id, typ, subject string, data any) error {
	e, err := NewEvent(id, typ, subject, c.now(), data)
	if err != nil {
		return err
	}
	return c.queueEvent(ctx, tx, e)
}

// runEventTypes: the runs whose end is an event.
var runEventTypes = map[string]string{RunBuild: EventBuild, RunPublish: EventPublish, RunTest: EventTest}

// RunTest is the kind of a test gate's run (internal/testrun).
const RunTest = "test"

// emitRunTx queues the event of a finished run (build, publish, test).
func (c *Catalog) emitRunTx(ctx context.Context, tx *sql.Tx, runID int64) error {
	var r Run
	var started, ended string
	err := tx.QueryRowContext(ctx, c.q("SELECT id, kind, image, version, status, started_by, started_at, ended_at, error FROM runs WHERE id = ?"), runID).
		Scan(&r.ID, &r.Kind, &r.Image, &r.Version, &r.Status, &r.By, &started, &ended, &r.Error)
	if err != nil {
		return fmt.Errorf("read run %d: %w", runID, err)
	}
	typ, ok := runEventTypes[r.Kind]
	if !ok {
		return nil
	}
	r.StartedAt, r.EndedAt = parseTime(started), parseTime(ended)
	return c.emitTx(ctx, tx, fmt.Sprintf("run-%d-%s", r.ID, r.Status), typ, refSubject(r.Image, r.Version), r)
}

// rolloutStep is the data of a rollout step event.
type rolloutStep struct {
	RolloutID int64           `json:"rollout_id"`
	Ref       Ref             `json:"ref"`
	Kind      string          `json:"kind"`
	Target    string          `json:"target"`
	State     string          `json:"state"`
	Detail    string          `json:"detail,omitempty"`
	Members   []RolloutMember `json:"members"`
}

// emitRolloutTx queues a rollout step: its id is the digest of what the
// step says, so an update that repeats the last one queues nothing new.
func (c *Catalog) emitRolloutTx(ctx context.Context, tx *sql.Tx, id int64, state, detail string, members []RolloutMember) error {
	st := rolloutStep{RolloutID: id, State: state, Detail: detail, Members: members}
	if st.Members == nil {
		st.Members = []RolloutMember{}
	}
	err := tx.QueryRowContext(ctx, c.q(`SELECT r.kind, r.target, v.version, i.name FROM rollouts r JOIN versions v ON v.id = r.version_id
		JOIN images i ON i.id = v.image_id WHERE r.id = ?`), id).Scan(&st.Kind, &st.Target, &st.Ref.Version, &st.Ref.Image)
	if err != nil {
		return fmt.Errorf("read rollout %d: %w", id, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\n", state, detail)
	for _, m := range members {
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00%v\n", m.Member, m.Version, m.State, m.Healthy)
	}
	sum := hex.EncodeToString(h.Sum(nil))[:16]
	return c.emitTx(ctx, tx, fmt.Sprintf("rollout-%d-%s", id, sum), EventRollout, st.Ref.String(), st)
}

// emitPromotionTx queues a promotion (id: the promotion record).
func (c *Catalog) emitPromotionTx(ctx context.Context, tx *sql.Tx, promotionID int64, p Promotion) error {
	return c.emitTx(ctx, tx, fmt.Sprintf("promotion-%d", promotionID), EventPromotion, refSubject(p.Image, p.To), p)
}

func refSubject(image, version string) string {
	if version == "" {
		return image
	}
	return image + "@" + version
}
