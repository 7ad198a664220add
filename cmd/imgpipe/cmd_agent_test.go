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
	// a token file group or others can read is refused, with the fix
	tokFile := filepath.Join(t.TempDir(), "agent.token")
	for _, mode := range []os.FileMode{0o644, 0o640, 0o604} {
		mustWrite(t, tokFile, []byte("0123456789abcdef0123456789abcdef\n"))
		if err := os.Chmod(tokFile, mode); err != nil {
			t.Fatal(err)
		}
		_, err = runCLI(t, "serve", "--agent-token-file", tokFile, "--listen", "127.0.0.1:0", "--catalog", filepath.Join(t.TempDir(), "c.db"))
		if err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Errorf("token file mode %04o: %v", mode, err)
		}
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
	// the first run enrolled and kept the credential, private, in the tree
	credFile := filepath.Join(root, "etc", "imgpipe", "agent.credential")
	if fi, err := os.Stat(credFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("credential file: %v %v", fi, err)
	}
	// a host that is enrolled reports without the fleet token
	if out, err := runCLI(t, "agent", "--once", "--server", ts.URL, "--ca-file", ca, "--root", root, "--name", "cli-host", "--platform", "onprem", "--quick"); exitStatus(err) != 2 {
		t.Fatalf("enrolled host without the fleet token: %v\n%s", err, out)
	}
	// another machine holding the fleet token cannot take cli-host's name
	other := filepath.Join(t.TempDir(), "other.credential")
	_, err = runCLI(t, append(args, "--credential-file", other)...)
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "already enrolled") || !strings.Contains(err.Error(), "revoke-agent") {
		t.Fatalf("second enrolment of cli-host: %v", err)
	}
	// a wrong fleet token: exit 1, and the message says what to fix
	mustWrite(t, tokFile, []byte("not-the-right-token"))
	_, err = runCLI(t, "agent", "--once", "--server", ts.URL, "--ca-file", ca, "--token-file", tokFile, "--root", root, "--name", "new-host", "--platform", "onprem", "--credential-file", filepath.Join(t.TempDir(), "c"))
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "--token") {
		t.Fatalf("wrong token: %v", err)
	}
	// plain http off loopback is refused before anything is sent
	_, err = runCLI(t, "agent", "--once", "--server", "http://fleet.example:8080", "--token", token, "--root", root, "--name", "x")
	if exitStatus(err) != 1 || !strings.Contains(err.Error(), "clear text") {
		t.Fatalf("plain http: %v", err)
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
