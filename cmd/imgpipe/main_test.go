package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"
)

// TestMain keeps every test away from the user's own catalog: commands that
// fall back to the default catalog location write under a temporary
// XDG_STATE_HOME instead of ~/.local/state.
func TestMain(m *testing.M) {
	if args := os.Getenv("IMGPIPE_TEST_MAIN"); args != "" {
		// run as the imgpipe binary would (TestInterruptExits130)
		os.Exit(run(context.Background(), strings.Fields(args), os.Stderr))
	}
	dir, err := os.MkdirTemp("", "imgpipe-cmd-test-state-*")
	if err != nil {
		panic(err)
	}
	os.Setenv("XDG_STATE_HOME", dir)
	os.Unsetenv("IMGPIPE_CATALOG")
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runCLI runs imgpipe in-process with args and returns what it printed
// (results and cobra's own output together) and its error.
func runCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var buf bytes.Buffer
	old := stdout
	stdout = &buf
	defer func() { stdout = old }()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&buf)
	root.SetErr(&buf)
	err := root.Execute()
	return buf.String(), err
}
