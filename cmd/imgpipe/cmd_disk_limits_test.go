package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/disk"
)

// TestDiskCheckAzureTooLarge (issue #20): `disk check --azure` said a
// 10 TiB fixed VHD was ready. It is not: exit 2, naming the page blob and
// OS disk limits.
func TestDiskCheckAzureTooLarge(t *testing.T) {
	p := filepath.Join(t.TempDir(), "huge.vhd")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	const size = 10 << 40
	if _, err := f.WriteAt(disk.NewFixedFooter(size, [16]byte{1}, time.Now()).Marshal(), size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := runCLI(t, "disk", "check", "--azure", p)
	if code := exitCode(err, false); code != exitNegative {
		t.Fatalf("exit %v, want 2\n%s", err, out)
	}
	for _, want := range []string{"NOT ready", "page-blob-size", "8 TiB", "os-disk-size", "4,095 GiB"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
