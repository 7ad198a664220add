package server

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

func TestCheckListen(t *testing.T) {
	tests := []struct {
		addr string
		tls  bool
		ok   bool
	}{
		{"127.0.0.1:8080", false, true},
		{"[::1]:8080", false, true},
		{"localhost:8080", false, true},
		{"127.0.0.2:0", false, true},
		{"0.0.0.0:8080", false, false},
		{":8080", false, false},
		{"[::]:8080", false, false},
		{"fleet.example.com:8080", false, false},
		{"0.0.0.0:8443", true, true},
		{"127.0.0.1", false, false},
	}
	for _, tc := range tests {
		if err := CheckListen(tc.addr, tc.tls); (err == nil) != tc.ok {
			t.Errorf("CheckListen(%q, tls=%v) = %v", tc.addr, tc.tls, err)
		}
	}
}

func TestListenAndServeStopsWithContext(t *testing.T) {
	cat, err := catalog.Open(context.Background(), filepath.Join(t.TempDir(), "c.db"))
	must(t, err)
	defer cat.Close()
	srv, err := New(Config{Catalog: cat})
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	addrc := make(chan string, 1)
	done := make(chan error, 1)
	go func() {
		done <- srv.ListenAndServe(ctx, ServeOptions{Listen: "127.0.0.1:0", OnListening: func(a string) { addrc <- a }})
	}()
	var addr string
	select {
	case addr = <-addrc:
	case err := <-done:
		t.Fatal(err)
	}
	resp, err := http.Get("http://" + addr + "/healthz")
	must(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ok\n" || resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, b)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("ListenAndServe did not return after cancel")
	}
	if err := srv.ListenAndServe(context.Background(), ServeOptions{Listen: "0.0.0.0:0"}); err == nil {
		t.Fatal("public listen without TLS accepted")
	}
	if err := srv.ListenAndServe(context.Background(), ServeOptions{Listen: "127.0.0.1:0", TLSCert: "x.pem"}); err == nil {
		t.Fatal("cert without key accepted")
	}
}
