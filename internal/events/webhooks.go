package events

// The webhook verbs' flows: add a webhook, list them with their
// deliveries, and emit an event with a prompt delivery attempt.

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"imgpipe/internal/catalog"
)

// AddWebhook adds (or replaces) the webhook name, which receives the events
// whose type starts with one of types (every event when none) at rawURL,
// signed with the secret in secretFile when given.
func AddWebhook(ctx context.Context, cat *catalog.Catalog, name, rawURL, secretFile string, types []string) (catalog.Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return catalog.Webhook{}, fmt.Errorf("webhook URL %q: want an http(s) URL", rawURL)
	}
	w := catalog.Webhook{Name: name, URL: rawURL, SecretFile: secretFile, Types: types}
	return w, cat.PutWebhook(ctx, w)
}

// WebhookStatus is a webhook and its deliveries.
type WebhookStatus struct {
	catalog.Webhook
	catalog.OutboxStatus
}

// Webhooks lists the webhooks with their deliveries (pending, delivered,
// last error).
func Webhooks(ctx context.Context, cat *catalog.Catalog) ([]WebhookStatus, error) {
	hooks, err := cat.Webhooks(ctx)
	if err != nil {
		return nil, err
	}
	st, err := cat.Outbox(ctx)
	if err != nil {
		return nil, err
	}
	by := map[string]catalog.OutboxStatus{}
	for _, s := range st {
		by[s.Webhook] = s
	}
	var out []WebhookStatus
	for _, h := range hooks {
		out = append(out, WebhookStatus{h, by[h.Name]})
	}
	return out, nil
}

// Text is what a delivery round did, for people.
func (r Result) Text() string {
	s := fmt.Sprintf("delivered %d, failed %d (retried later)\n", r.Delivered, r.Failed)
	for _, e := range r.Errors {
		s += fmt.Sprintf("  %s\n", e)
	}
	return s
}

// EmitNow queues an event in the catalog's outbox and tries to deliver
// what is due at once, for at most wait; what does not go now stays queued
// for imgpipe serve or `webhook deliver`. A failure to queue is returned:
// the change happened, and the caller says so.
func EmitNow(ctx context.Context, cat *catalog.Catalog, wait time.Duration, typ, subject string, data any) error {
	if _, err := (&Emitter{Cat: cat}).Emit(ctx, "", typ, subject, data); err != nil {
		return fmt.Errorf("the event %s was not queued: %w", typ, err)
	}
	DeliverNow(ctx, cat, wait)
	return nil
}

// DeliverNow tries to deliver what is due at once, for at most wait (after
// a change whose event is queued); what fails stays queued, retried later.
func DeliverNow(ctx context.Context, cat *catalog.Catalog, wait time.Duration) {
	dctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	_, _ = (&Deliverer{Cat: cat}).DeliverDue(dctx)
}
