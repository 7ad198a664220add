package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

// TestServeWithAzureEmulator runs imgpipe serve configured for Azure only
// through the environment `imgpipe emulator` prints, and checks that the
// pull at start ran and succeeded.
func TestServeWithAzureEmulator(t *testing.T) {
	env := azemutest.Start(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	root := newRootCmd()
	root.SetArgs([]string{"serve", "--listen", addr, "--catalog", filepath.Join(dir, "c.db"), "--azure-subscription", env.SubscriptionID})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	var metrics string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get("http://" + addr + "/metrics")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			metrics = string(b)
			if strings.Contains(metrics, "imgpipe_azure_last_pull_timestamp_seconds") || strings.Contains(metrics, "imgpipe_azure_pull_errors_total 1") {
				break
			}
		}
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	if !strings.Contains(metrics, "imgpipe_azure_pulls_total 1") || !strings.Contains(metrics, "imgpipe_azure_pull_errors_total 0") {
		t.Fatalf("the pull at start did not succeed:\n%s", metrics)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
