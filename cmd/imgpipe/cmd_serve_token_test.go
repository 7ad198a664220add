package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/oauth2-proxy/mockoidc"
)

// TestServeTokens makes a bearer token with the CLI, reads a serve that
// requires credentials with it, revokes it and is refused.
func TestServeTokens(t *testing.T) {
	db := filepath.Join(t.TempDir(), "c.db")
	out, err := runCLI(t, "serve", "token", "create", "ci", "--expires", "2d", "--by", "tester", "--catalog", db)
	if err != nil {
		t.Fatalf("create: %v\n%s", err, out)
	}
	secret := strings.TrimSpace(out)
	if !strings.HasPrefix(secret, "imgp_") || strings.Contains(secret, "\n") {
		t.Fatalf("create printed %q, want the secret alone", out)
	}
	if out, err := runCLI(t, "serve", "token", "create", "ci", "--catalog", db); err == nil || !strings.Contains(err.Error(), "revoke it first") {
		t.Fatalf("a second token named ci: %v\n%s", err, out)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--listen", addr, "--catalog", db, "--require-auth"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	get := func(token string) int {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			req, _ := http.NewRequest("GET", "http://"+addr+"/api/hosts", nil)
			if token != "" {
				req.Header.Set("Authorization", "Bearer "+token)
			}
			resp, err := http.DefaultClient.Do(req)
			if err == nil {
				resp.Body.Close()
				return resp.StatusCode
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve does not answer: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if got := get(""); got != http.StatusUnauthorized {
		t.Errorf("--require-auth without a token: %d", got)
	}
	if got := get(secret); got != http.StatusOK {
		t.Errorf("with the token: %d", got)
	}
	if out, err := runCLI(t, "serve", "token", "revoke", "ci", "--catalog", db); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("revoke: %v %s", err, out)
	}
	if got := get(secret); got != http.StatusUnauthorized {
		t.Errorf("with the revoked token: %d", got)
	}
	out, err = runCLI(t, "serve", "token", "list", "--all", "--output", "json", "--catalog", db)
	if err != nil {
		t.Fatal(err)
	}
	var list []struct {
		Name      string `json:"name"`
		CreatedBy string `json:"created_by"`
		Revoked   string `json:"revoked_at"`
		LastUsed  string `json:"last_used_at"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0].Name != "ci" || list[0].CreatedBy != "tester" || list[0].Revoked == "" || list[0].LastUsed == "" || strings.Contains(out, secret) {
		t.Fatalf("list: %v %s", err, out)
	}
	if out, _ := runCLI(t, "serve", "token", "list", "--catalog", db); strings.Contains(out, "ci ") {
		t.Errorf("list without --all shows the revoked token:\n%s", out)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}

// TestServeOIDCFlags starts serve with sign-in configured by its flags
// (the client secret from the environment) against a local OIDC provider:
// a browser is sent to sign in, and from there to the provider.
func TestServeOIDCFlags(t *testing.T) {
	m, err := mockoidc.Run()
	if err != nil {
		t.Fatal(err)
	}
	defer m.Shutdown()
	t.Setenv(oidcSecretEnv, m.ClientSecret)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--listen", addr, "--catalog", filepath.Join(t.TempDir(), "c.db"),
		"--oidc-issuer", m.Issuer(), "--oidc-client-id", m.ClientID, "--oidc-allowed-group", "fleet-readers"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var resp *http.Response
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		req, _ := http.NewRequest("GET", "http://"+addr+"/", nil)
		req.Header.Set("Accept", "text/html")
		if resp, err = noFollow.Do(req); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve does not answer: %v", err)
		}
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/auth/login?next=%2F" {
		t.Fatalf("a browser without a session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, err = noFollow.Get("http://" + addr + "/auth/login?next=%2F")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if !strings.HasPrefix(loc, m.AuthorizationEndpoint()+"?") || !strings.Contains(loc, "client_id="+m.ClientID) || !strings.Contains(loc, "code_challenge_method=S256") {
		t.Fatalf("sign-in sends the browser to %q", loc)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
