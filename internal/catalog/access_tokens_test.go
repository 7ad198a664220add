package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func testAccessTokens(t *testing.T, b backend) {
	ctx := context.Background()
	clk := newClock()
	c := openAt(t, b.newLocation(t), WithClock(clk.Now))
	a, bb, s := strings.Repeat("a", 64), strings.Repeat("b", 64), strings.Repeat("c", 64)
	ci, err := c.AddAccessToken(ctx, AccessToken{Kind: TokenBearer, Name: "ci", CreatedBy: "ops", ExpiresAt: clk.Now().Add(time.Hour)}, a)
	if err != nil || ci.ID == 0 {
		t.Fatalf("add: %+v %v", ci, err)
	}
	if _, err := c.AddAccessToken(ctx, AccessToken{Kind: TokenBearer, Name: "ci"}, bb); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second live token named ci: %v, want ErrConflict", err)
	}
	if _, err := c.AddAccessToken(ctx, AccessToken{Kind: TokenBearer, Name: "bad name"}, bb); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad name: %v", err)
	}
	if _, err := c.AddAccessToken(ctx, AccessToken{Kind: TokenBearer, Name: "other"}, a); err == nil {
		t.Fatal("one secret recorded for two tokens")
	}
	got, err := c.AccessTokenFor(ctx, strings.ToUpper(a))
	if err != nil || got.Name != "ci" || got.CreatedBy != "ops" || got.Valid(clk.Now()) != nil {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if _, err := c.AccessTokenFor(ctx, bb); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown secret: %v", err)
	}
	if err := got.Valid(clk.Now().Add(time.Hour)); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("at its expiry: %v", err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.TouchAccessToken(ctx, ci.ID, clk.Now()))
	sess, err := c.AddAccessToken(ctx, AccessToken{Kind: TokenSession, Name: "jane@example.com", Subject: "1234", ExpiresAt: clk.Now().Add(8 * time.Hour)}, s)
	must(err)
	list, err := c.AccessTokens(ctx, TokenBearer, false)
	must(err)
	if len(list) != 1 || list[0].Name != "ci" || list[0].LastUsed.IsZero() {
		t.Fatalf("bearer list: %+v", list)
	}
	clk.Advance(time.Minute)
	rev, err := c.RevokeBearerToken(ctx, "ci")
	if err != nil || rev.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v %v", rev, err)
	}
	if got, _ := c.AccessTokenFor(ctx, a); got.Valid(clk.Now()) == nil || !strings.Contains(got.Valid(clk.Now()).Error(), "revoked") {
		t.Fatalf("a revoked token is valid: %+v", got)
	}
	if _, err := c.RevokeBearerToken(ctx, "ci"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	// the name is free again once revoked
	_, err = c.AddAccessToken(ctx, AccessToken{Kind: TokenBearer, Name: "ci"}, bb)
	must(err)
	if all, _ := c.AccessTokens(ctx, "", true); len(all) != 3 {
		t.Fatalf("all tokens: %+v", all)
	}
	must(c.EndSession(ctx, s))
	if got, _ := c.AccessTokenFor(ctx, s); got.ID != sess.ID || got.Valid(clk.Now()) == nil {
		t.Fatalf("an ended session is valid: %+v", got)
	}
	clk.Advance(time.Hour)
	if n, err := c.PruneSessions(ctx, clk.Now()); err != nil || n != 1 {
		t.Fatalf("prune: %d %v", n, err)
	}
	if _, err := c.AccessTokenFor(ctx, s); !errors.Is(err, ErrNotFound) {
		t.Fatalf("pruned session still there: %v", err)
	}
}
