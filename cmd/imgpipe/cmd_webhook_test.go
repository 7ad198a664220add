package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
)

// TestWebhookCLI: a promotion and a revocation reach a webhook at once,
// as signed CloudEvents; a webhook that is down gets them from
// `webhook deliver` later.
func TestWebhookCLI(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	loc := filepath.Join(dir, "catalog.db")
	var mu sync.Mutex
	var got []string
	up := false
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if !up {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		if !events.Verify([]byte("s3cret"), body, r.Header.Get(events.SignatureHeader)) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var ev struct{ Type, Subject string }
		json.Unmarshal(body, &ev)
		got = append(got, ev.Type+" "+ev.Subject)
	}))
	defer recv.Close()
	secret := filepath.Join(dir, "hook.secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)

	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0"} {
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	cat.Close()
	if out, err := runCLI(t, "webhook", "add", "ops", recv.URL, "--secret-file", secret, "--catalog", loc); err != nil {
		t.Fatalf("webhook add: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "promote", "web", "1.0.0", "--to", "canary", "--catalog", loc); err != nil {
		t.Fatalf("promote: %v\n%s", err, out)
	}
	out, _ := runCLI(t, "webhook", "list", "--catalog", loc)
	if !strings.Contains(out, "webhook answered 503") {
		t.Errorf("webhook list does not show the failed delivery:\n%s", out)
	}
	mu.Lock()
	up = true
	mu.Unlock()
	if out, err := runCLI(t, "revoke", "web", "1.1.0", "--reason", "CVE-2026-1", "--catalog", loc); err != nil {
		t.Fatalf("revoke: %v\n%s", err, out)
	}
	// The promotion's first retry waits for its backoff; `deliver` after it.
	mu.Lock()
	n := len(got)
	mu.Unlock()
	if n != 1 {
		t.Fatalf("after revoke the receiver has %v, want the revocation", got)
	}
	cat, _ = catalog.Open(ctx, loc)
	cat.DB().ExecContext(ctx, "UPDATE event_deliveries SET next_attempt_at = ''") // the backoff has passed
	cat.Close()
	if out, err := runCLI(t, "webhook", "deliver", "--catalog", loc); err != nil || !strings.Contains(out, "delivered 1") {
		t.Fatalf("webhook deliver: %v\n%s", err, out)
	}
	mu.Lock()
	defer mu.Unlock()
	want := map[string]bool{events.TypePromotion + " web@1.0.0": true, events.TypeRevocation + " web@1.1.0": true}
	if len(got) != 2 || !want[got[0]] || !want[got[1]] {
		t.Errorf("receiver got %v", got)
	}
}
