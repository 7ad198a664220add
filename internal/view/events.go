package view

import (
	"fmt"
	"io"

	"imgpipe/internal/events"
)

// Webhooks draws the webhooks and their deliveries (pending, delivered,
// the last error).
func Webhooks(w io.Writer, asJSON bool, ws []events.WebhookStatus) error {
	if asJSON {
		return JSON(w, ws)
	}
	t := Table{Header: []string{"NAME", "URL", "PENDING", "DELIVERED", "LAST ERROR"}}
	for _, h := range ws {
		t.Rows = append(t.Rows, []string{h.Name, h.URL, fmt.Sprint(h.Pending), fmt.Sprint(h.Delivered), Dash(h.LastError)})
	}
	return t.Fprint(w)
}
