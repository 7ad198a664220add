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
	"fmt"
	"time"

	ce "github.com/cloudevents/sdk-go/v2/event"
	"github.com/google/uuid"

	"imgpipe/internal/catalog"
)

// Event types (CloudEvents "type", reverse-DNS style).
const (
	TypeBuild      = "dev.imgpipe.build.completed"
	TypePublish    = "dev.imgpipe.publish.completed"
	TypeTest       = "dev.imgpipe.test.completed"
	TypePromotion  = "dev.imgpipe.promotion"
	TypeRevocation = "dev.imgpipe.revocation"
	TypeRollout    = "dev.imgpipe.rollout.step"
	TypeDrift      = "dev.imgpipe.drift.detected"
)

// Source is the CloudEvents source of imgpipe's events.
const Source = "urn:imgpipe"

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
	ev := ce.New(ce.CloudEventsVersionV1)
	ev.SetID(id)
	ev.SetSource(Source)
	ev.SetType(typ)
	ev.SetSubject(subject)
	ev.SetTime(now().UTC())
	if err := ev.SetData("application/json", data); err != nil {
		return "", fmt.Errorf("event %s: %w", typ, err)
	}
	if err := ev.Validate(); err != nil {
		return "", fmt.Errorf("event %s: %w", typ, err)
	}
	body, err := ev.MarshalJSON()
	if err != nil {
		return "", err
	}
	return id, e.Cat.AppendEvent(ctx, catalog.OutboxEvent{ID: id, Type: typ, Subject: subject, Body: body})
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
