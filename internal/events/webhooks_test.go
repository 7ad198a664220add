package events

import (
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

// TestWebhookFlows: add refuses what is not an http(s) URL; an event
// emitted with EmitNow reaches an up webhook at once and stays pending for
// one that is down; the listing and its rows show both.
func TestWebhookFlows(t *testing.T) {
	ctx := t.Context()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	for _, bad := range []string{"ftp://x/y", "hooks.internal/x", "https://", "http://[::1"} {
		if _, err := AddWebhook(ctx, cat, "bad", bad, "", nil); err == nil || !strings.Contains(err.Error(), "want an http(s) URL") {
			t.Errorf("AddWebhook(%q) = %v", bad, err)
		}
	}
	up := &receiver{secret: []byte("s"), seen: map[string]int{}, types: map[string]string{}}
	srv := httptest.NewServer(up)
	defer srv.Close()
	down := &receiver{secret: []byte("s"), fail: 100, seen: map[string]int{}, types: map[string]string{}}
	srv2 := httptest.NewServer(down)
	defer srv2.Close()
	if w, err := AddWebhook(ctx, cat, "ops", srv.URL, secretFile(t, "s"), nil); err != nil || w.Name != "ops" || w.URL != srv.URL {
		t.Fatalf("AddWebhook = %+v, %v", w, err)
	}
	if _, err := AddWebhook(ctx, cat, "chat", srv2.URL, secretFile(t, "s"), []string{TypePromotion}); err != nil {
		t.Fatal(err)
	}
	if err := EmitNow(ctx, cat, 5*time.Second, TypePromotion, "web@1.0.0", map[string]string{"to": "prod"}); err != nil {
		t.Fatal(err)
	}
	up.mu.Lock()
	got := len(up.seen)
	up.mu.Unlock()
	if got != 1 {
		t.Fatalf("the up webhook got %d events, want 1 at once", got)
	}
	ws, err := Webhooks(ctx, cat)
	if err != nil || len(ws) != 2 {
		t.Fatalf("Webhooks = %+v, %v", ws, err)
	}
	// (view.Webhooks draws them as rows; its test holds the table)
	st := map[string]WebhookStatus{}
	for _, w := range ws {
		st[w.Name] = w
	}
	if o, c := st["ops"], st["chat"]; o.URL != srv.URL || o.Pending != 0 || o.Delivered != 1 || o.LastError != "" ||
		c.URL != srv2.URL || c.Pending != 1 || c.Delivered != 0 || !strings.HasPrefix(c.LastError, "webhook answered 500") {
		t.Errorf("statuses = %+v", ws)
	}
	if s := (Result{Delivered: 2, Failed: 1, Errors: []string{"chat: down"}}).Text(); s != "delivered 2, failed 1 (retried later)\n  chat: down\n" {
		t.Errorf("Result.Text = %q", s)
	}
}
