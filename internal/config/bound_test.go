package config

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// deep returns a pipeline file whose value nests n levels deep in the
// given style.
func deep(style string, n int) string {
	switch style {
	case "list":
		return "image \"web\" {\n  x = " + strings.Repeat("[", n) + strings.Repeat("]", n) + "\n}\n"
	case "object":
		return "image \"web\" {\n  x = " + strings.Repeat("{a=", n) + "1" + strings.Repeat("}", n) + "\n}\n"
	case "block":
		return strings.Repeat("b {\n", n) + strings.Repeat("}\n", n)
	case "paren":
		return "image \"web\" {\n  x = " + strings.Repeat("(", n) + "1" + strings.Repeat(")", n) + "\n}\n"
	case "interp":
		return "image \"web\" {\n  x = " + strings.Repeat(`"${`, n) + `"a"` + strings.Repeat(`}"`, n) + "\n}\n"
	}
	panic(style)
}

// TestParseRefusesDeepNesting: on the old loader a file nested 100,000
// deep killed the process with a fatal stack overflow in the HCL parser
// (not even recoverable by a test), and 20,000 deep took 345 MB. Both must
// now be refused before parsing, quickly and in little memory, with the
// place and the reason.
func TestParseRefusesDeepNesting(t *testing.T) {
	for _, style := range []string{"list", "object", "block", "paren", "interp"} {
		for _, n := range []int{100_000, 20_000, MaxDepth + 1} {
			src := []byte(deep(style, n))
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			start := time.Now()
			_, err := Parse(src, "deep.hcl")
			took := time.Since(start)
			runtime.ReadMemStats(&after)
			alloc := after.TotalAlloc - before.TotalAlloc
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(err.Error(), "nested too deeply") || !strings.Contains(err.Error(), "deep.hcl:") {
				t.Fatalf("%s %d deep: err = %v, want a nesting error with file:line:col", style, n, err)
			}
			// Generous bounds for a shared machine; the old parser took
			// 345 MB at 20,000 deep and crashed at 100,000.
			if alloc > 4<<20 || took > 2*time.Second {
				t.Errorf("%s %d deep (%d bytes): %d bytes allocated in %v, want < 4 MiB and < 2 s", style, n, len(src), alloc, took)
			}
			t.Logf("%s %d deep (%d bytes): refused in %v, %d bytes allocated", style, n, len(src), took, alloc)
		}
	}
}

// TestCheckBoundsAcceptsRealNesting: nesting up to the bound passes, and
// brackets that are not syntax (in strings, heredocs, comments, escaped
// template sequences) are not counted.
func TestCheckBoundsAcceptsRealNesting(t *testing.T) {
	lots := strings.Repeat("{[(", 100)
	ok := map[string]string{
		"at the bound":     deep("list", MaxDepth-1), // plus the image block: MaxDepth
		"string":           `x = "` + lots + `"`,
		"escaped quote":    `x = "\"` + lots + `"`,
		"escaped templ":    `x = "` + strings.Repeat("$${", 100) + `"`,
		"heredoc":          "x = <<EOT\n" + lots + "\n  EOT\ny = [1]\n",
		"indented heredoc": "x = <<-EOT\n  " + lots + "\n  EOT\n",
		"line comment":     "# " + lots + "\n// " + lots + "\nx = 1\n",
		"block comment":    "/* " + lots + " */ x = 1\n",
		"minimal":          minimal,
	}
	for name, src := range ok {
		if d := checkBounds([]byte(src), "f.hcl"); d.HasErrors() {
			t.Errorf("%s: refused: %v", name, d)
		}
	}
	// An interpolation inside a heredoc still counts.
	if d := checkBounds([]byte("x = <<EOT\n"+strings.Repeat("${", MaxDepth+1)+"\nEOT\n"), "f.hcl"); !d.HasErrors() {
		t.Error("interpolations nested in a heredoc were not counted")
	}
	// The refusal points at the first level too many.
	d := checkBounds([]byte("x = "+strings.Repeat("[", MaxDepth+5)), "f.hcl")
	if !d.HasErrors() || d[0].Subject.Start.Line != 1 || d[0].Subject.Start.Column != 5+MaxDepth {
		t.Fatalf("diagnostic = %v", d)
	}
}

// TestLoadRefusesHugeFile: a file larger than MaxFileSize is refused
// without being read whole or parsed.
func TestLoadRefusesHugeFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "big.hcl")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	// Sparse: 1 GiB claimed, nothing written.
	if err := f.Truncate(1 << 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = Load(p)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("err = %v", err)
	}
	if a := after.TotalAlloc - before.TotalAlloc; a > 8*MaxFileSize {
		t.Fatalf("refusing a 1 GiB file allocated %d bytes", a)
	}
	if _, err := Parse(make([]byte, MaxFileSize+1), "big.hcl"); err == nil || !strings.Contains(err.Error(), "too large") {
		t.Fatalf("Parse of an oversized buffer: %v", err)
	}
}
