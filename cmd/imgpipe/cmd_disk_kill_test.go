package main

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// bigRawSource writes a 1 GiB raw disk holding 192 MiB of data, enough
// that a conversion of it is still writing when the test signals it.
func bigRawSource(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "src.raw")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 4<<20)
	for i := range buf {
		buf[i] = byte(r.IntN(255) + 1)
	}
	for i := int64(0); i < 48; i++ {
		if _, err := f.WriteAt(buf, i*(20<<20)); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// startConvert runs `imgpipe disk convert src out --to vhd-fixed` as its own
// process and returns once its partial output file holds data.
func startConvert(t *testing.T, src, out string) (*exec.Cmd, *bytes.Buffer, chan error) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "IMGPIPE_TEST_MAIN=disk convert "+src+" "+out+" --to vhd-fixed")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			t.Fatalf("the conversion ended before it could be interrupted: %s", stderr.String())
		default:
		}
		for _, p := range hidden(t, out) {
			if st, err := os.Stat(p); err == nil && st.Size() > 0 {
				return cmd, &stderr, exited
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	cmd.Process.Kill()
	t.Fatal("no partial output appeared")
	return nil, nil, nil
}

// hidden lists the hidden files next to out that belong to it (".out.*").
func hidden(t *testing.T, out string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+"*"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestConvertKilledLeavesNoPartial (issue #20): kill -9 during `disk
// convert` left a hidden multi-GiB .tmp file that nothing removed. The next
// conversion to the same output removes it.
func TestConvertKilledLeavesNoPartial(t *testing.T) {
	dir := t.TempDir()
	src := bigRawSource(t, dir)
	out := filepath.Join(dir, "out.vhd")
	cmd, _, exited := startConvert(t, src, out)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-exited
	left := hidden(t, out)
	if len(left) == 0 {
		t.Fatal("nothing was left behind by the killed conversion: the test did not kill it mid-write")
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the killed conversion left an output: %v", err)
	}
	msg, err := runCLI(t, "disk", "convert", src, out, "--to", "vhd-fixed")
	if err != nil {
		t.Fatalf("the next conversion: %v\n%s", err, msg)
	}
	if left := hidden(t, out); len(left) != 0 {
		t.Fatalf("the killed conversion's files are still there after the next one: %v", left)
	}
	if !strings.Contains(msg, "removed") {
		t.Errorf("the next conversion did not say it removed the leftover: %q", msg)
	}
}

// TestConvertInterruptStops: Ctrl-C during `disk convert` stops it within a
// second or so (exit 130), leaving no output and no partial file.
func TestConvertInterruptStops(t *testing.T) {
	dir := t.TempDir()
	src := bigRawSource(t, dir)
	out := filepath.Join(dir, "out.vhd")
	cmd, stderr, exited := startConvert(t, src, out)
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(5 * time.Second): // generous: eight engineers share two cores
		cmd.Process.Kill()
		t.Fatalf("still running %v after SIGINT", time.Since(start))
	}
	t.Logf("stopped %v after SIGINT", time.Since(start))
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("exit code %d after SIGINT, want 130 (stderr %s)", code, stderr)
	}
	if left := hidden(t, out); len(left) != 0 {
		t.Fatalf("left behind: %v (stderr %s)", left, stderr)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an interrupted conversion left an output: %v", err)
	}
}
