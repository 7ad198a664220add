package main

import (
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

// serve --reconcile runs the reconciler's rounds: the drift of the fixture
// triggers a rebuild, which fails (no packer block) and stops the loop; the
// later rounds stay stopped and record nothing new.
func TestServeReconciles(t *testing.T) {
	dir, loc, file := reconcileFixture(t, `rebuild {
  on_drift {
    hosts = 3
  }
}`)
	bare := filepath.Join(dir, "bare.hcl")
	os.WriteFile(bare, []byte("image \"web\" {\n  source = \"disk.vhdx\"\n  os_type = \"Linux\"\n}\n"), 0o644)
	if out, err := runCLI(t, "serve", "--catalog", loc, "--reconcile", bare); err == nil || !strings.Contains(err.Error(), "has no rebuild block") {
		t.Fatalf("serve --reconcile without a rebuild block: %v\n%s", err, out)
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
	root.SetArgs([]string{"serve", "--listen", addr, "--catalog", loc, "--reconcile", file, "--reconcile-interval", "200ms"})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	var stopped []catalog.Decision
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline) && len(stopped) == 0; {
		select {
		case err := <-done:
			t.Fatalf("serve exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		stopped, _ = cat.Decisions(ctx, catalog.DecisionFilter{Image: "web", Decision: catalog.DecisionStopped})
	}
	if len(stopped) != 1 || !strings.Contains(stopped[0].Reason, "failed to build") {
		t.Fatalf("stopped decisions %+v", stopped)
	}
	time.Sleep(700 * time.Millisecond) // three more rounds
	all, _ := cat.Decisions(ctx, catalog.DecisionFilter{Image: "web"})
	if len(all) != 2 || all[1].Decision != catalog.DecisionRebuild || all[1].State != catalog.RebuildFailed {
		t.Fatalf("decisions after more rounds %+v", all)
	}
	if done, err := cat.JobDone(ctx, "reconcile"); err != nil || done.IsZero() {
		t.Fatalf("the rounds are not claimed as a catalog job: %v %v", done, err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
