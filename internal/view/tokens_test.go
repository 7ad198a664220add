package view

import (
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

func TestAccessTokens(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got := AccessTokens([]catalog.AccessToken{
		{Name: "prometheus", CreatedBy: "ops", CreatedAt: at, ExpiresAt: at.Add(90 * 24 * time.Hour), LastUsed: at.Add(time.Hour)},
		{Name: "ci", CreatedAt: at, RevokedAt: at.Add(2 * time.Hour)},
	}).String()
	want := []string{
		"NAME        BY   CREATED            EXPIRES            LAST USED          REVOKED",
		"prometheus  ops  2026-03-01 12:00Z  2026-05-30 12:00Z  2026-03-01 13:00Z  -",
		"ci          -    2026-03-01 12:00Z  -                  -                  2026-03-01 14:00Z",
	}
	if strings.TrimRight(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}
