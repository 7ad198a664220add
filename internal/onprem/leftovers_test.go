package onprem

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const killedAddEnv = "IMGPIPE_TEST_KILLED_ADD"

// TestKilledAddProcess is not a test: run by TestKilledAddLeavesNothingBehind
// as a child process, it adds $IMGPIPE_TEST_KILLED_ADD's file ("lib|file")
// and stops midway through the copy, saying so, to be killed.
func TestKilledAddProcess(t *testing.T) {
	arg := os.Getenv(killedAddEnv)
	if arg == "" {
		t.Skip("helper process for TestKilledAddLeavesNothingBehind")
	}
	lib, file, _ := strings.Cut(arg, "|")
	l, err := Open(lib)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	l.hook = func(step string, off int64) {
		if step == "copy input" && off >= 2<<20 {
			fmt.Println("copying")
			time.Sleep(time.Minute)
		}
	}
	_, err = l.AddFile(context.Background(), file, AddOptions{Image: "web", Version: "1.0", Convert: "vhdx", Generation: "V1", OS: "linux"})
	fmt.Println("error", err)
	os.Exit(1)
}

// TestKilledAddLeavesNothingBehind: an add killed with SIGKILL midway
// leaves its hidden staging folder (with a partial copy); the next add on
// this host removes it, since its process is gone, and leaves alone one
// whose process is alive.
func TestKilledAddLeavesNothingBehind(t *testing.T) {
	l := newLib(t)
	src := writeInput(t, pattern(8<<20, 6))
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledAddProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), killedAddEnv+"="+l.Root()+"|"+src)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "copying" {
		t.Fatalf("child: %q", sc.Text())
	}
	cmd.Process.Signal(os.Kill)
	cmd.Wait()
	imageDir := filepath.Join(l.Root(), "web")
	left, _ := filepath.Glob(filepath.Join(imageDir, ".staging-*"))
	if len(left) != 1 {
		t.Fatalf("after the kill: %v, want the killed add's staging folder", left)
	}
	// One of a live process (ours) of the same shape is kept.
	alive := filepath.Join(imageDir, hiddenPattern(".staging-", "0.9")+"123")
	if err := os.Mkdir(alive, 0o755); err != nil {
		t.Fatal(err)
	}
	// And one of another host.
	other := filepath.Join(imageDir, ".staging-0.8-1@elsewhere-42")
	os.Mkdir(other, 0o755)
	if _, err := l.AddFile(context.Background(), src, AddOptions{Image: "web", Version: "1.1", Generation: "V1", OS: "linux"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range left {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("the killed add's %s is still there (%v)", filepath.Base(p), err)
		}
	}
	for _, p := range []string{alive, other} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s was removed: %v", filepath.Base(p), err)
		}
	}
	if pid, host, ok := leftoverOwner(".staging-1.0-rc-4711@build-01.example-98765"); !ok || pid != 4711 || host != "build-01.example" {
		t.Errorf("leftoverOwner = %d %q %v", pid, host, ok)
	}
}
