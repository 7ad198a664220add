package golden

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// recorder is a testing.TB that keeps what Check reported.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper()                   {}
func (r *recorder) Name() string              { return "TestX" }
func (r *recorder) Errorf(f string, a ...any) { r.failed, r.msg = true, fmt.Sprintf(f, a...) }
func (r *recorder) Fatalf(f string, a ...any) { r.Errorf(f, a...) }
func (r *recorder) Fatal(a ...any)            { r.Errorf("%v", fmt.Sprint(a...)) }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "testdata", "x.ps1")
	r := &recorder{TB: t}
	Check(r, path, "a\n", false)
	if !r.failed || !strings.Contains(r.msg, "no such file") || !strings.Contains(r.msg, "-update") {
		t.Fatalf("missing golden file: failed %v, %q", r.failed, r.msg)
	}
	r = &recorder{TB: t}
	Check(r, path, "a\n", true)
	if b, err := os.ReadFile(path); r.failed || err != nil || string(b) != "a\n" {
		t.Fatalf("update: failed %v %q, file %q %v", r.failed, r.msg, b, err)
	}
	Check(r, path, "a\n", false)
	if r.failed {
		t.Fatalf("same text: %q", r.msg)
	}
	Check(r, path, "b\n", false)
	if !r.failed || !strings.Contains(r.msg, "differs from "+path) {
		t.Fatalf("other text: failed %v, %q", r.failed, r.msg)
	}
}
