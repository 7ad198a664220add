package server

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

// TestRunChecksBeforeTheCatalog: a listen address or a fleet token that
// serve refuses stops it before the catalog is opened.
func TestRunChecksBeforeTheCatalog(t *testing.T) {
	opened := false
	open := func(context.Context) (*catalog.Catalog, error) { opened = true; return nil, os.ErrInvalid }
	tokFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokFile, []byte("0123456789abcdef0123\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		o    Options
		want string
	}{
		{Options{ServeOptions: ServeOptions{Listen: "0.0.0.0:0"}}, "not loopback"},
		{Options{ServeOptions: ServeOptions{Listen: "127.0.0.1:0"}, AgentToken: "short"}, "shorter than 16"},
		{Options{ServeOptions: ServeOptions{Listen: "127.0.0.1:0"}, AgentTokenFile: tokFile}, "chmod 600"},
	} {
		c.o.Catalog = open
		if err := Run(context.Background(), c.o); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Run(%+v): %v, want %q", c.o, err, c.want)
		}
	}
	if opened {
		t.Error("the catalog was opened before the options were checked")
	}
}

// TestRunServes starts a server from Options: Start runs with the open
// catalog, the notes say where it listens and that reading needs a
// credential, and it stops with the context.
func TestRunServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	db := filepath.Join(t.TempDir(), "c.db")
	var notes lockedBuilder
	started := make(chan *catalog.Catalog, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	o := Options{ServeOptions: ServeOptions{Listen: addr}, Channel: "prod", Auth: AuthOptions{RequireAuth: true},
		Catalog: func(ctx context.Context) (*catalog.Catalog, error) { return catalog.Open(ctx, db) },
		Start:   func(_ context.Context, c *catalog.Catalog) error { started <- c; return nil },
		Notes:   &notes}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, o) }()
	select {
	case c := <-started:
		if c == nil {
			t.Fatal("Start got no catalog")
		}
	case err := <-done:
		t.Fatalf("Run: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("Start was not called")
	}
	for deadline := time.Now().Add(30 * time.Second); !strings.Contains(notes.String(), "http://"+addr); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("notes: %q", notes.String())
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := "imgpipe serve: reading needs a bearer token (imgpipe serve token create)\n" +
		"imgpipe serve: http://" + addr + " (catalog " + db + ", channel prod, agent intake disabled: no token)\n"
	if notes.String() != want {
		t.Errorf("notes:\n%q\nwant\n%q", notes.String(), want)
	}
}

// lockedBuilder is a strings.Builder the server writes while the test reads.
type lockedBuilder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuilder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestListeningNote(t *testing.T) {
	got := listeningNote("10.0.0.1:8443", true, "postgres://db/imgpipe", "test", true, []string{"a", "b"})
	if want := "imgpipe serve: https://10.0.0.1:8443 (catalog postgres://db/imgpipe, channel test, Azure a,b)\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
