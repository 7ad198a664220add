package transfer

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"imgpipe/internal/disk"
)

// refusingTarget fails the test if an upload ever gets as far as preparing it.
type refusingTarget struct {
	t    *testing.T
	kind string
}

func (r refusingTarget) Identity() TargetIdentity { return TargetIdentity{Kind: r.kind} }
func (r refusingTarget) Prepare(context.Context, int64, *Checkpoint, bool) (PageBlob, string, error) {
	r.t.Fatal("an upload larger than Azure accepts reached the target")
	return nil, "", nil
}
func (r refusingTarget) Finish(context.Context) error { return nil }
func (r refusingTarget) Stats() *Stats                { return &Stats{} }

// TestUploadRefusesWhatAzureWouldRefuse: a sparse 64 TiB disk (a few bytes
// on disk) is refused before anything is sent, for a page blob (8 TiB) and
// for a managed disk (32 TiB).
func TestUploadRefusesWhatAzureWouldRefuse(t *testing.T) {
	src := filepath.Join(t.TempDir(), "huge.raw")
	f, err := os.Create(src)
	if err != nil {
		t.Fatal(err)
	}
	mbr := make([]byte, 512)
	mbr[510], mbr[511] = 0x55, 0xAA
	mbr[446+4] = 0x83
	f.Write(mbr)
	if err := f.Truncate(64 << 40); err != nil {
		t.Skipf("this file system cannot hold a 64 TiB sparse file: %v", err)
	}
	f.Close()
	for _, kind := range []string{"blob", "disk"} {
		_, err := Upload(context.Background(), src, refusingTarget{t, kind}, Options{Checkpoint: filepath.Join(t.TempDir(), "cp")})
		if !errors.Is(err, disk.ErrTooLarge) {
			t.Errorf("%s: 64 TiB upload: %v, want disk.ErrTooLarge", kind, err)
		}
	}
}
