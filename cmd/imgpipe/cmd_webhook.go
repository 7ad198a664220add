package main

// webhook: where imgpipe's events go. Every build, publish, test, promotion,
// revocation, rollout step and drift detection is queued in the catalog's
// outbox and delivered to each webhook at least once (imgpipe serve delivers
// continuously; a command that emits tries at once; `webhook deliver` is the
// one-shot for cron).

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
)

func init() { register(newWebhookCmd) }

func newWebhookCmd() *cobra.Command {
	var loc string
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Send imgpipe's events (CloudEvents 1.0, HMAC-signed) to webhooks",
		Long: `Every build, publish, test, promotion, revocation, rollout step and drift
detection is a CloudEvents 1.0 JSON event (structured mode, Content-Type
application/cloudevents+json). Events are written to the catalog's outbox
with the change they report and delivered to every webhook at least once,
retried with backoff; receivers dedupe on the event id. With --secret-file,
each delivery carries X-Imgpipe-Signature-256: sha256=HEX(HMAC-SHA256(secret,
body)). The secret stays in that file (mode 0600) on the machines that
deliver; the catalog keeps only its path. Slack or Teams receivers are
webhooks like any other (through a relay that reshapes the JSON).`,
		Example: `  imgpipe webhook add ops https://hooks.example.internal/imgpipe --secret-file /etc/imgpipe/ops.secret
  imgpipe webhook add chat https://relay.internal/teams --type dev.imgpipe.promotion --type dev.imgpipe.drift
  imgpipe webhook list
  imgpipe webhook deliver      # one-shot delivery of what is due (imgpipe serve does this continuously)`,
	}
	var secret string
	var types []string
	add := &cobra.Command{
		Use:   "add NAME URL",
		Short: "Add (or replace) a webhook",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			u, err := url.Parse(args[1])
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fmt.Errorf("webhook URL %q: want an http(s) URL", args[1])
			}
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			w := catalog.Webhook{Name: args[0], URL: args[1], SecretFile: secret, Types: types}
			if err := c.PutWebhook(cmd.Context(), w); err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(w)
			}
			_, err = fmt.Fprintf(stdout, "webhook %s: events from now on go to %s\n", w.Name, w.URL)
			return err
		},
	}
	add.Flags().StringVar(&secret, "secret-file", "", "file holding the HMAC secret (mode 0600) on the delivering machines")
	add.Flags().StringArrayVar(&types, "type", nil, "deliver only events whose type starts with this (repeatable; default all)")
	list := &cobra.Command{
		Use:   "list",
		Short: "List the webhooks and their deliveries (pending, delivered, last error)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			hooks, err := c.Webhooks(cmd.Context())
			if err != nil {
				return err
			}
			st, err := c.Outbox(cmd.Context())
			if err != nil {
				return err
			}
			by := map[string]catalog.OutboxStatus{}
			for _, s := range st {
				by[s.Webhook] = s
			}
			if jsonOutput() {
				type row struct {
					catalog.Webhook
					catalog.OutboxStatus
				}
				var out []row
				for _, h := range hooks {
					out = append(out, row{h, by[h.Name]})
				}
				return printJSON(out)
			}
			var rows [][]string
			for _, h := range hooks {
				s := by[h.Name]
				rows = append(rows, []string{h.Name, h.URL, fmt.Sprint(s.Pending), fmt.Sprint(s.Delivered), dash(s.LastError)})
			}
			return printTable([]string{"NAME", "URL", "PENDING", "DELIVERED", "LAST ERROR"}, rows)
		},
	}
	remove := &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a webhook (its undelivered events are dropped)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			return c.DeleteWebhook(cmd.Context(), args[0])
		},
	}
	deliver := &cobra.Command{
		Use:   "deliver",
		Short: "Deliver the events that are due, once (for cron; imgpipe serve does it continuously)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			res, err := (&events.Deliverer{Cat: c}).DeliverDue(cmd.Context())
			if err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(res)
			}
			fmt.Fprintf(stdout, "delivered %d, failed %d (retried later)\n", res.Delivered, res.Failed)
			for _, e := range res.Errors {
				fmt.Fprintf(stdout, "  %s\n", e)
			}
			return nil
		},
	}
	for _, c := range []*cobra.Command{add, list, remove, deliver} {
		addCatalogFlag(c, &loc)
	}
	cmd.AddCommand(add, list, remove, deliver)
	return cmd
}

// emitEvent queues an event in the catalog's outbox and tries to deliver
// what is due at once, for a few seconds; what does not go now stays queued
// for imgpipe serve or `webhook deliver`. A failure to queue is returned: the
// change happened, and the caller says so.
func emitEvent(ctx context.Context, c *catalog.Catalog, typ, subject string, data any) error {
	if _, err := (&events.Emitter{Cat: c}).Emit(ctx, "", typ, subject, data); err != nil {
		return fmt.Errorf("the event %s was not queued: %w", typ, err)
	}
	deliverQueued(ctx, c)
	return nil
}

// deliverQueued tries to deliver what is due at once, for a few seconds
// (after a change whose event the catalog queued with its record).
func deliverQueued(ctx context.Context, c *catalog.Catalog) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	_, _ = (&events.Deliverer{Cat: c}).DeliverDue(dctx)
}
