// Package testenv holds helpers for tests that need real components (qemu-img,
// Azurite, PostgreSQL, Packer, Chromium...).
//
// A missing component skips the test on a developer machine, but fails it when
// IMGPIPE_CI=1 (set by .ci/run), so CI can never pass by skipping.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under .ci/run.
func InCI() bool { return os.Getenv("IMGPIPE_CI") == "1" }

// RequireTool returns the path of the named program, or skips (fails in CI).
func RequireTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, name+" is not installed (run .ci/run or install it)")
	}
	return p
}

// Missing skips the test with reason, or fails it in CI.
func Missing(t testing.TB, reason string) {
	t.Helper()
	if InCI() {
		t.Fatalf("required component missing in CI: %s", reason)
	}
	t.Skip(reason)
}
