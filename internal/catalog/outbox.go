package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Webhook is a receiver of imgpipe's events. The secret that signs what it
// receives stays in a file on the machines that deliver; the catalog keeps
// only the file's path.
type Webhook struct {
	Name       string    `json:"name"`
	URL        string    `json:"url"`
	SecretFile string    `json:"secret_file,omitempty"`
	Types      []string  `json:"types,omitempty"` // event type prefixes; empty: every event
	CreatedAt  time.Time `json:"created_at"`
}

// Wants says whether the webhook receives events of type t.
func (w Webhook) Wants(t string) bool {
	if len(w.Types) == 0 {
		return true
	}
	for _, p := range w.Types {
		if strings.HasPrefix(t, p) {
			return true
		}
	}
	return false
}

// PutWebhook adds or replaces a webhook.
func (c *Catalog) PutWebhook(ctx context.Context, w Webhook) error {
	if w.Name == "" || w.URL == "" {
		return fmt.Errorf("%w: a webhook needs a name and a URL", ErrInvalid)
	}
	_, err := c.db.ExecContext(ctx, c.q(`INSERT INTO webhooks (name, url, secret_file, types, created_at) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET url = excluded.url, secret_file = excluded.secret_file, types = excluded.types`),
		w.Name, w.URL, w.SecretFile, strings.Join(w.Types, ","), c.nowText())
	if err != nil {
		return fmt.Errorf("store webhook %s: %w", w.Name, err)
	}
	return nil
}

// DeleteWebhook removes a webhook; its undelivered events are dropped.
func (c *Catalog) DeleteWebhook(ctx context.Context, name string) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, c.q("DELETE FROM webhooks WHERE name = ?"), name)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no webhook %q", ErrNotFound, name)
		}
		_, err = tx.ExecContext(ctx, c.q("DELETE FROM event_deliveries WHERE webhook = ? AND delivered_at = ''"), name)
		return err
	})
}

// Webhooks lists the webhooks by name.
func (c *Catalog) Webhooks(ctx context.Context) ([]Webhook, error) {
	rows, err := c.db.QueryContext(ctx, "SELECT name, url, secret_file, types, created_at FROM webhooks ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("read webhooks: %w", err)
	}
	defer rows.Close()
	var out []Webhook
	for rows.Next() {
		var w Webhook
		var types, at string
		if err := rows.Scan(&w.Name, &w.URL, &w.SecretFile, &types, &at); err != nil {
			return nil, err
		}
		if types != "" {
			w.Types = strings.Split(types, ",")
		}
		w.CreatedAt = parseTime(at)
		out = append(out, w)
	}
	return out, rows.Err()
}

// OutboxEvent is one event to deliver: its id (receivers dedupe on it), type,
// subject and the whole encoded event.
type OutboxEvent struct {
	ID      string
	Type    string
	Subject string
	Body    []byte
}

// AppendEvent writes an event to the outbox with a delivery for every
// webhook that wants its type. An event id already there is a no-op (an
// emitter retried), so an event is queued once.
func (c *Catalog) AppendEvent(ctx context.Context, e OutboxEvent) error {
	return c.tx(ctx, func(tx *sql.Tx) error { return c.queueEvent(ctx, tx, e) })
}

// Delivery is one event due at one webhook, claimed by a deliverer.
type Delivery struct {
	OutboxID int64
	Webhook  Webhook
	Event    OutboxEvent
	Attempts int
}

// ClaimDeliveries takes up to limit deliveries that are due and not claimed,
// oldest first, and claims them for lease: another deliverer (another serve
// replica) skips them until the lease runs out.
func (c *Catalog) ClaimDeliveries(ctx context.Context, limit int, lease time.Duration) ([]Delivery, error) {
	now := c.now()
	var out []Delivery
	err := c.tx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if c.dialect == dialectPostgres {
			lock = " FOR UPDATE OF d SKIP LOCKED"
		}
		rows, err := tx.QueryContext(ctx, c.q(`SELECT d.outbox_id, d.webhook, d.attempts, o.event_id, o.type, o.subject, o.body, w.url, w.secret_file, w.types
			FROM event_deliveries d JOIN event_outbox o ON o.id = d.outbox_id JOIN webhooks w ON w.name = d.webhook
			WHERE d.delivered_at = '' AND d.next_attempt_at <= ? AND d.claimed_until <= ?
			ORDER BY d.outbox_id LIMIT ?`+lock), fmtTime(now), fmtTime(now), limit)
		if err != nil {
			return fmt.Errorf("read due events: %w", err)
		}
		for rows.Next() {
			var d Delivery
			var types string
			if err := rows.Scan(&d.OutboxID, &d.Webhook.Name, &d.Attempts, &d.Event.ID, &d.Event.Type, &d.Event.Subject, &d.Event.Body,
				&d.Webhook.URL, &d.Webhook.SecretFile, &types); err != nil {
				rows.Close()
				return err
			}
			if types != "" {
				d.Webhook.Types = strings.Split(types, ",")
			}
			out = append(out, d)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, d := range out {
			if _, err := tx.ExecContext(ctx, c.q("UPDATE event_deliveries SET claimed_until = ? WHERE outbox_id = ? AND webhook = ?"),
				fmtTime(now.Add(lease)), d.OutboxID, d.Webhook.Name); err != nil {
				return err
			}
		}
		return nil
	})
	return out, err
}

// DeliveryDone records that a webhook took an event.
func (c *Catalog) DeliveryDone(ctx context.Context, d Delivery) error {
	_, err := c.db.ExecContext(ctx, c.q("UPDATE event_deliveries SET delivered_at = ?, attempts = attempts + 1, claimed_until = '', last_error = '' WHERE outbox_id = ? AND webhook = ?"),
		c.nowText(), d.OutboxID, d.Webhook.Name)
	return err
}

// DeliveryFailed records a failed attempt and when to try again.
func (c *Catalog) DeliveryFailed(ctx context.Context, d Delivery, why string, retryAt time.Time) error {
	if len(why) > 500 {
		why = why[:500]
	}
	_, err := c.db.ExecContext(ctx, c.q("UPDATE event_deliveries SET attempts = attempts + 1, claimed_until = '', last_error = ?, next_attempt_at = ? WHERE outbox_id = ? AND webhook = ?"),
		why, fmtTime(retryAt), d.OutboxID, d.Webhook.Name)
	return err
}

// OutboxStatus counts the deliveries per webhook.
type OutboxStatus struct {
	Webhook   string `json:"webhook"`
	Pending   int    `json:"pending"`
	Delivered int    `json:"delivered"`
	LastError string `json:"last_error,omitempty"`
}

// Outbox reports the deliveries per webhook.
func (c *Catalog) Outbox(ctx context.Context) ([]OutboxStatus, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT webhook,
		SUM(CASE WHEN delivered_at = '' THEN 1 ELSE 0 END), SUM(CASE WHEN delivered_at <> '' THEN 1 ELSE 0 END), MAX(last_error)
		FROM event_deliveries GROUP BY webhook ORDER BY webhook`)
	if err != nil {
		return nil, fmt.Errorf("read outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxStatus
	for rows.Next() {
		var s OutboxStatus
		var last sql.NullString
		if err := rows.Scan(&s.Webhook, &s.Pending, &s.Delivered, &last); err != nil {
			return nil, err
		}
		s.LastError = last.String
		out = append(out, s)
	}
	return out, rows.Err()
}
