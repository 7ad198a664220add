package disk

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestStalePartialRemoved: a partial file nobody holds (its writer was
// killed) is removed by the next conversion to the same target; one that
// a live conversion holds, and another target's, are left alone.
func TestStalePartialRemoved(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src.raw")
	writeRaw(t, src, 1<<20, scatteredPatterns(1<<20, 3))
	out := filepath.Join(dir, "out.vhd")
	stale := filepath.Join(dir, ".out.vhd"+partialMarker+"123")
	other := filepath.Join(dir, ".other.vhd"+partialMarker+"123")
	live, _, err := createPartial(out, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer live.abort()
	for _, p := range []string{stale, other} {
		if err := os.WriteFile(p, make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	res, err := ConvertFile(context.Background(), src, out, ConvertOptions{To: FormatVHDFixed})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.RemovedPartial) != 1 || res.RemovedPartial[0] != stale {
		t.Fatalf("removed %v, want only %s", res.RemovedPartial, stale)
	}
	if _, err := os.Stat(stale); !os.IsNotExist(err) {
		t.Fatalf("stale partial still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Fatalf("another target's partial was touched: %v", err)
	}
	if runtime.GOOS != "windows" {
		if _, err := os.Stat(live.Name()); err != nil {
			t.Fatalf("a live conversion's partial file was removed: %v", err)
		}
	}
}
