package view

import (
	"fmt"
	"io"
	"time"

	"imgpipe/internal/catalog"
)

// AccessTokens is the table of bearer tokens: names and dates, never
// secrets.
func AccessTokens(ts []catalog.AccessToken) Table {
	t := Table{Header: []string{"NAME", "BY", "CREATED", "EXPIRES", "LAST USED", "REVOKED"}}
	for _, a := range ts {
		t.Rows = append(t.Rows, []string{a.Name, Dash(a.CreatedBy), When(a.CreatedAt), When(a.ExpiresAt), When(a.LastUsed), When(a.RevokedAt)})
	}
	return t
}

// TokenCreated draws a new bearer token: as JSON the record with its
// secret, else the secret alone on w (for a script to capture) and a note
// on notes (stderr) that it is shown only now.
func TokenCreated(w, notes io.Writer, asJSON bool, secret string, t catalog.AccessToken) error {
	if asJSON {
		return JSON(w, struct {
			catalog.AccessToken
			Secret string `json:"secret"`
		}{t, secret})
	}
	if _, err := fmt.Fprintln(w, secret); err != nil {
		return err
	}
	_, err := fmt.Fprintf(notes, "token %s made (%s); the secret above is shown only now\n", t.Name, Expiry(t))
	return err
}

// Expiry says when a token stops working.
func Expiry(t catalog.AccessToken) string {
	if t.ExpiresAt.IsZero() {
		return "never expires"
	}
	return "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
}
