package main

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
	"imgpipe/internal/server"
)

func TestServeRefusesPublicListenWithoutTLS(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", "[::]:0", "192.0.2.1:8080", ":8080"} {
		_, err := runCLI(t, "serve", "--listen", addr, "--catalog", filepath.Join(t.TempDir(), "c.db"))
		if err == nil || !strings.Contains(err.Error(), "not loopback") {
			t.Errorf("serve --listen %s: %v", addr, err)
		}
	}
	_, err := runCLI(t, "serve", "--agent-token", "short", "--catalog", filepath.Join(t.TempDir(), "c.db"))
	if err == nil || !strings.Contains(err.Error(), "shorter than 16") {
		t.Errorf("short token: %v", err)
	}
}

func TestAgentOnceCLI(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	const token = "cli-test-token-0123456789abcdef"
	srv, err := server.New(server.Config{Catalog: cat, AgentToken: token})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(srv.Handler())
	defer ts.Close()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	tokFile := filepath.Join(dir, "token")
	mustWrite(t, ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ts.Certificate().Raw}))
	mustWrite(t, tokFile, []byte(token+"\n"))

	root := t.TempDir()
	mustWrite(t, filepath.Join(root, "srv", "a.conf"), []byte("a=1\n"))
	id := drift.Identity{Image: "web", Version: "1.0.0"}
	if _, err := drift.WriteIdentity(root, id); err != nil {
		t.Fatal(err)
	}
	base, err := drift.Capture(ctx, root, drift.CaptureOptions{Rules: drift.Rules{Paths: []string{"srv"}}, Identity: &id})
	if err != nil {
		t.Fatal(err)
	}
	bp, _ := drift.BaselinePath(root)
	if _, err := drift.WriteBaselineFile(bp, base); err != nil {
		t.Fatal(err)
	}
	args := []string{"agent", "--once", "--server", ts.URL, "--ca-file", ca, "--token-file", tokFile, "--root", root, "--name", "cli-host", "--platform", "onprem"}

	out, err := runCLI(t, args...)
	if exitStatus(err) != 0 || !strings.Contains(out, "web 1.0.0 on cli-host (onprem): no drift") || !strings.Contains(out, "report sent") {
		hosts, _ := cat.Hosts(ctx, catalog.HostFilter{})
		t.Fatalf("clean: %v\n%s\n%+v", err, out, hosts)
	}
	mustWrite(t, filepath.Join(root, "srv", "b.conf"), []byte("b=2\n"))
	out, err = runCLI(t, append(args, "-o", "json", "--quick")...)
	if exitStatus(err) != 2 {
		t.Fatalf("drifted: exit %d (%v)\n%s", exitStatus(err), err, out)
	}
	var r agent.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil || !r.Drifted || r.Summary.FilesAdded != 1 || r.Depth != "quick" {
		t.Fatalf("json report: %v %+v", err, r)
	}
	hosts, err := cat.Hosts(ctx, catalog.HostFilter{})
	if err != nil || len(hosts) != 1 || !strings.Contains(string(hosts[0].DriftSummary), `"files_added":1`) {
		t.Fatalf("stored: %v %+v", err, hosts)
	}
	// a wrong token: exit 1, and the message says what to fix
	mustWrite(t, tokFile, []byte("not-the-right-token"))
	_, err = runCLI(t, args...)
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("wrong token: %v", err)
	}
	// without the CA the server's certificate is not trusted
	_, err = runCLI(t, "agent", "--once", "--server", ts.URL, "--token", token, "--root", root, "--name", "x", "--attempts", "1")
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("untrusted server: %v", err)
	}
}

func mustWrite(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
