// Package golden compares what a test produced with a file kept in the
// package's testdata/, for tests of generated text (PowerShell scripts,
// rendered errors). Only tests import it.
package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// Check compares got with the golden file at path and fails t when they
// differ or the file is missing, saying how to rewrite it. With update (the
// test package's own -update flag) it first writes got to path.
func Check(t testing.TB, path, got string, update bool) {
	t.Helper()
	if update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
			return
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
			return
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run '%s' -update)", err, t.Name())
		return // t is a recorder in this package's test
	}
	if got != string(want) {
		t.Errorf("output differs from %s (go test -run '%s' -update rewrites it):\n%s", path, t.Name(), got)
	}
}
