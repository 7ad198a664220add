package server

import (
	"context"
	"io"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

// An image's page says when a failed rebuild stopped its loop, and why;
// once resumed it shows the last rebuild only.
func TestImagePageShowsAStoppedLoop(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: "1.0.1"}); err != nil {
		t.Fatal(err)
	}
	srv, err := New(Config{Catalog: cat})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	page := func() string {
		t.Helper()
		resp, err := ts.Client().Get(ts.URL + "/images/web")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			t.Fatalf("%s\n%s", resp.Status, b)
		}
		return string(b)
	}
	if p := page(); strings.Contains(p, "Rebuild loop") {
		t.Fatal("a loop shown for an image the reconciler never saw")
	}
	at := time.Now().UTC().Add(-time.Minute)
	claim, ok, err := cat.ClaimRebuild(ctx, catalog.Decision{Image: "web", Trigger: "drift", Reason: "3 of 10 prod hosts drifted: rebuild", At: at})
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if err := cat.FinishRebuild(ctx, claim.ID, catalog.RebuildFailed, "1.0.1", 0); err != nil {
		t.Fatal(err)
	}
	why := "web@1.0.1 failed its test: test smoke failed on qemu-tcg (boot: no boot marker)"
	if _, err := cat.RecordDecision(ctx, catalog.Decision{Image: "web", Decision: catalog.DecisionStopped, Reason: why, At: at}); err != nil {
		t.Fatal(err)
	}
	p := page()
	if !strings.Contains(p, `id="loop-stopped"`) || !strings.Contains(p, "failed its test: test smoke failed") || !strings.Contains(p, "Last rebuild: failed (1.0.1)") {
		t.Fatalf("stopped loop not shown:\n%s", p)
	}
	if _, err := cat.RecordDecision(ctx, catalog.Decision{Image: "web", Decision: catalog.DecisionResume, Reason: "resumed by alice"}); err != nil {
		t.Fatal(err)
	}
	if p := page(); strings.Contains(p, `id="loop-stopped"`) || !strings.Contains(p, "Last rebuild: failed") {
		t.Fatalf("after resume:\n%s", p)
	}
}
