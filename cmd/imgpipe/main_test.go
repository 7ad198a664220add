package main

import (
	"os"
	"testing"
)

// TestMain keeps every test away from the user's own catalog: commands that
// fall back to the default catalog location write under a temporary
// XDG_STATE_HOME instead of ~/.local/state.
func TestMain(m *testing.M) {
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
