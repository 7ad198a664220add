package events

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/testenv"
)

// receiver is a webhook that checks signatures, fails its first fail
// requests with 500 and counts every event id it accepted.
type receiver struct {
	mu     sync.Mutex
	secret []byte
	fail   int
	seen   map[string]int
	types  map[string]string
	badSig int
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if !Verify(rc.secret, body, r.Header.Get(SignatureHeader)) || r.Header.Get("Content-Type") != ContentType {
		rc.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rc.fail > 0 {
		rc.fail--
		http.Error(w, "down", http.StatusInternalServerError)
		return
	}
	var ev struct {
		SpecVersion string `json:"specversion"`
		ID, Type    string
		Subject     string
		Data        json.RawMessage
	}
	if err := json.Unmarshal(body, &ev); err != nil || ev.SpecVersion != "1.0" {
		http.Error(w, "not a CloudEvent", http.StatusBadRequest)
		return
	}
	rc.seen[ev.ID]++
	rc.types[ev.ID] = ev.Type
}

func secretFile(t *testing.T, secret string) string {
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestOutboxSQLite(t *testing.T) {
	testOutbox(t, func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") })
}

func TestOutboxPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	testOutbox(t, func(t *testing.T) string { return pg.NewDatabase(t) })
}

// testOutbox: events queued before and after a "restart" (a new catalog
// handle and deliverer) all arrive, each exactly once after dedupe, through
// a receiver that is down for a while, with two deliverers racing.
func testOutbox(t *testing.T, newLoc func(t *testing.T) string) {
	ctx := context.Background()
	loc := newLoc(t)
	rc := &receiver{secret: []byte("hook-secret"), fail: 3, seen: map[string]int{}, types: map[string]string{}}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	other := &receiver{secret: []byte("other"), seen: map[string]int{}, types: map[string]string{}}
	srv2 := httptest.NewServer(other)
	t.Cleanup(srv2.Close)

	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if err := cat.PutWebhook(ctx, catalog.Webhook{Name: "ops", URL: srv.URL, SecretFile: secretFile(t, "hook-secret")}); err != nil {
		t.Fatal(err)
	}
	if err := cat.PutWebhook(ctx, catalog.Webhook{Name: "chat", URL: srv2.URL, SecretFile: secretFile(t, "other"), Types: []string{"dev.imgpipe.promotion"}}); err != nil {
		t.Fatal(err)
	}
	em := &Emitter{Cat: cat}
	var ids []string
	for i, typ := range []string{TypeBuild, TypePublish, TypeTest, TypePromotion} {
		id, err := em.Emit(ctx, "", typ, "web@1.4.0", map[string]any{"n": i})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// An emitter that retries with the same id queues nothing new.
	if _, err := em.Emit(ctx, ids[0], TypeBuild, "web@1.4.0", map[string]any{"n": 0}); err != nil {
		t.Fatal(err)
	}
	fast := func(c *catalog.Catalog) *Deliverer {
		return &Deliverer{Cat: c, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Lease: 200 * time.Millisecond}
	}
	if _, err := fast(cat).DeliverDue(ctx); err != nil {
		t.Fatal(err)
	}
	cat.Close() // the server restarts with events still pending

	cat2, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat2.Close()
	em2 := &Emitter{Cat: cat2}
	for _, typ := range []string{TypeRollout, TypeDrift, TypeRevocation} {
		id, err := em2.Emit(ctx, "", typ, "web@1.4.0", nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Two deliverers (two replicas) race until nothing is pending.
	deadline := time.Now().Add(20 * time.Second)
	for {
		var wg sync.WaitGroup
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := fast(cat2).DeliverDue(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		st, err := cat2.Outbox(ctx)
		if err != nil {
			t.Fatal(err)
		}
		pending := 0
		for _, s := range st {
			pending += s.Pending
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still pending after 20 s: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if len(rc.seen) != len(ids) || rc.badSig != 0 {
		t.Fatalf("ops got %d distinct events (want %d), %d bad signatures", len(rc.seen), len(ids), rc.badSig)
	}
	for _, id := range ids {
		if rc.seen[id] < 1 {
			t.Errorf("event %s (%s) never arrived", id, rc.types[id])
		}
	}
	if len(other.seen) != 1 || other.types[ids[3]] != TypePromotion {
		t.Errorf("the promotion-only webhook got %v", other.types)
	}
}

func TestSecretFileRefusedWhenReadable(t *testing.T) {
	p := secretFile(t, "x")
	os.Chmod(p, 0o644)
	if _, err := readSecret(p); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable secret: %v", err)
	}
}

func TestSignature(t *testing.T) {
	if !Verify([]byte("k"), []byte("body"), Sign([]byte("k"), []byte("body"))) || Verify([]byte("k"), []byte("body!"), Sign([]byte("k"), []byte("body"))) {
		t.Fatal("HMAC signature does not check")
	}
}
