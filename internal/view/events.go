package view

import (
	"io"

	"imgpipe/internal/events"
)

// Webhooks draws the webhooks and their deliveries.
func Webhooks(w io.Writer, asJSON bool, ws []events.WebhookStatus) error {
	if asJSON {
		return JSON(w, ws)
	}
	return Table{Header: events.WebhookHeader, Rows: events.WebhookRows(ws)}.Fprint(w)
}
