// Package events tells the outside world what imgpipe did: every build,
// publish, test, promotion, revocation, rollout step and drift detection is a
// CloudEvents 1.0 event, written to the catalog's outbox in the same catalog
// as the change, then delivered to each configured webhook at least once,
// signed with HMAC-SHA256, retried with backoff. Receivers dedupe on the
// event id. Chat receivers (Slack, Teams) are webhooks like any other.
package events

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"time"

	"github.com/google/uuid"

	"imgpipe/internal/catalog"
)

// Event types (CloudEvents "type", reverse-DNS style). Builds, publishes
// and tests (their runs ending), promotions and rollout steps are emitted by
// the catalog in the transaction that records them; the rest through Emit.
const (
	TypeBuild      = catalog.EventBuild
	TypePublish    = catalog.EventPublish
	TypeTest       = catalog.EventTest
	TypePromotion  = catalog.EventPromotion
	TypeRevocation = catalog.EventRevocation
	TypeRollout    = catalog.EventRollout
	TypeDrift      = catalog.EventDrift
)

// Source is the CloudEvents source of imgpipe's events.
const Source = catalog.EventSource

// ContentType is the structured-mode media type each delivery carries.
const ContentType = "application/cloudevents+json"

// SignatureHeader carries "sha256=" + hex(HMAC-SHA256(secret, body)).
const SignatureHeader = "X-Imgpipe-Signature-256"

// Emitter writes events to the catalog's outbox.
type Emitter struct {
	Cat *catalog.Catalog
	Now func() time.Time // default time.Now
}

// Emit queues one event of type typ about subject (e.g. "web@1.4.0") with
// data (JSON-encoded). id names the event for receivers to dedupe on; empty
// makes a fresh one. An id already queued is not queued again, so a caller
// that retries with the same id never duplicates an event.
func (e *Emitter) Emit(ctx context.Context, id, typ, subject string, data any) (string, error) {
	if id == "" {
		id = uuid.NewString()
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	ev, err := catalog.NewEvent(id, typ, subject, now(), data)
	if err != nil {
		return "", err
	}
	return id, e.Cat.AppendEvent(ctx, ev)
}

// Sign returns the signature header value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header value in constant time (for receivers,
// and for imgpipe's own tests).
func Verify(secret, body []byte, header string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(header))
}
