package view

import "imgpipe/internal/catalog"

// AccessTokens is the table of bearer tokens: names and dates, never
// secrets.
func AccessTokens(ts []catalog.AccessToken) Table {
	t := Table{Header: []string{"NAME", "BY", "CREATED", "EXPIRES", "LAST USED", "REVOKED"}}
	for _, a := range ts {
		t.Rows = append(t.Rows, []string{a.Name, Dash(a.CreatedBy), When(a.CreatedAt), When(a.ExpiresAt), When(a.LastUsed), When(a.RevokedAt)})
	}
	return t
}
