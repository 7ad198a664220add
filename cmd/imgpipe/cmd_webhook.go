package main

// webhook: where imgpipe's events go (help/webhook.md).

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
	"imgpipe/internal/view"
)

func init() { register(newWebhookCmd) }

func newWebhookCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "webhook", Short: "Send imgpipe's events (CloudEvents 1.0, HMAC-signed) to webhooks"}
	var secret string
	var types []string
	add := catalogVerb("add NAME URL", "Add (or replace) a webhook", cobra.ExactArgs(2), func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
		w, err := events.AddWebhook(cmd.Context(), c, args[0], args[1], secret, types)
		if err != nil {
			return err
		}
		return draw(w, fmt.Sprintf("webhook %s: events from now on go to %s\n", w.Name, w.URL))
	})
	add.Flags().StringVar(&secret, "secret-file", "", "file holding the HMAC secret (mode 0600) on the delivering machines")
	add.Flags().StringArrayVar(&types, "type", nil, "deliver only events whose type starts with this (repeatable; default all)")
	list := catalogVerb("list", "List the webhooks and their deliveries (pending, delivered, last error)", cobra.NoArgs,
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			ws, err := events.Webhooks(cmd.Context(), c)
			if err != nil {
				return err
			}
			return view.Webhooks(stdout, jsonOutput(), ws)
		})
	remove := catalogVerb("remove NAME", "Remove a webhook (its undelivered events are dropped)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			return c.DeleteWebhook(cmd.Context(), args[0])
		})
	deliver := catalogVerb("deliver", "Deliver the events that are due, once (for cron; imgpipe serve does it continuously)", cobra.NoArgs,
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			res, err := (&events.Deliverer{Cat: c}).DeliverDue(cmd.Context())
			if err != nil {
				return err
			}
			return draw(res, res.Text())
		})
	cmd.AddCommand(add, list, remove, deliver)
	return cmd
}

// emitEvent queues an event and tries to deliver it for a few seconds (see
// events.EmitNow).
func emitEvent(ctx context.Context, c *catalog.Catalog, typ, subject string, data any) error {
	return events.EmitNow(ctx, c, 5*time.Second, typ, subject, data)
}

// deliverQueued tries to deliver what is due at once, for a few seconds
// (after a change whose event the catalog queued with its record).
func deliverQueued(ctx context.Context, c *catalog.Catalog) {
	events.DeliverNow(ctx, c, 5*time.Second)
}
