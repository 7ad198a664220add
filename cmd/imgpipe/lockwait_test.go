package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

const lockHolderEnv = "IMGPIPE_TEST_CMD_LOCK_HOLDER"

// TestCmdLockHolderProcess is not a test: run by TestPublishWaitsForAndTakesOverLock
// as a child process, it holds the lock of image "app" in the catalog
// $IMGPIPE_TEST_CMD_LOCK_HOLDER under a publish run, and waits to be killed.
func TestCmdLockHolderProcess(t *testing.T) {
	loc := os.Getenv(lockHolderEnv)
	if loc == "" {
		t.Skip("helper process for TestPublishWaitsForAndTakesOverLock")
	}
	ctx := context.Background()
	c, err := catalog.Open(ctx, loc)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	_ = c.WithImageLock(ctx, "app", "doomed", func(ctx context.Context) error {
		r, err := c.StartRun(ctx, catalog.Run{Kind: catalog.RunPublish, Image: "app", By: "doomed"})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("locked", r.ID)
		time.Sleep(time.Minute)
		os.Exit(3)
		return nil
	})
}

// TestPublishWaitsForAndTakesOverLock: publish says whom it waits for,
// gives up after --lock-timeout, and once the holder was killed with
// SIGKILL takes the lock over at once (no lease to wait out on SQLite),
// and imgpipe runs shows the killed run as abandoned.
func TestPublishWaitsForAndTakesOverLock(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.db")
	bootableRaw(t, filepath.Join(dir, "disk.raw"), 4<<20, "app")
	pipeline := filepath.Join(dir, "pipeline.hcl")
	os.WriteFile(pipeline, []byte("image \"app\" {\n  source  = \"disk.raw\"\n  os_type = \"Linux\"\n}\nonprem \"lab\" {\n  library = \"library\"\n}\n"), 0o644)
	c, err := catalog.Open(context.Background(), cat)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()

	holder := exec.Command(os.Args[0], "-test.run=^TestCmdLockHolderProcess$", "-test.count=1")
	holder.Env = append(os.Environ(), lockHolderEnv+"="+cat)
	out, _ := holder.StdoutPipe()
	holder.Stderr = os.Stderr
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { holder.Process.Kill(); holder.Wait() })
	sc := bufio.NewScanner(out)
	var runID string
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "locked "); ok {
			runID = id
			break
		}
	}
	if runID == "" {
		t.Fatal("the holder process never took the lock")
	}

	var notices bytes.Buffer
	lockNotices = &notices
	defer func() { lockNotices = os.Stderr }()
	host, _ := os.Hostname()
	_, err = runCLI(t, "publish", "-f", pipeline, "--catalog", cat, "--lock-timeout", "500ms")
	want := fmt.Sprintf("waiting for lock held by run %s (pid %d, host %s) since ", runID, holder.Process.Pid, host)
	if !strings.Contains(notices.String(), want) {
		t.Errorf("notices = %q, want %q", notices.String(), want)
	}
	if !errors.Is(err, catalog.ErrLockTimeout) {
		t.Fatalf("publish while the lock is held = %v, want ErrLockTimeout", err)
	}

	holder.Process.Signal(os.Kill)
	holder.Wait()
	notices.Reset()
	start := time.Now()
	if _, err := runCLI(t, "publish", "-f", pipeline, "--catalog", cat, "--lock-timeout", "30s"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("publish after the holder was killed took %v", d)
	}
	if !strings.Contains(notices.String(), "took over the lock of app from run "+runID) {
		t.Errorf("notices = %q", notices.String())
	}
	list, err := runCLI(t, "runs", "app", "--catalog", cat, "--status", "abandoned")
	if err != nil || !strings.Contains(list, "abandoned") || !strings.Contains(list, runID) {
		t.Errorf("runs --status abandoned: %v\n%s", err, list)
	}
}
