package pipeline

import (
	"context"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/config"
	"imgpipe/internal/disk/disktest"
	"imgpipe/internal/onprem"
	"imgpipe/internal/progress"
	"imgpipe/internal/source"
)

// TestAddToLibraryIsOnpremAdd: a publish's on-prem destination adds the disk
// through onprem.AddDisk, the function behind imgpipe onprem add: the same
// disk gives the same library metadata either way, and the publish does not
// read the source again (it hands AddDisk the inspected source: no "hash
// input" pass).
func TestAddToLibraryIsOnpremAdd(t *testing.T) {
	dir := t.TempDir()
	raw := filepath.Join(dir, "app.raw")
	disktest.WriteRaw(t, raw, 8<<20, []byte("payload"), 1<<20) // BIOS boot sector: Generation 1
	ctx := context.Background()
	src, err := source.Inspect(ctx, raw)
	if err != nil || src.Generation != "V1" {
		t.Fatalf("inspect: %+v %v", src, err)
	}
	steps := func(names *[]string) func(string) progress.Func {
		return func(n string) progress.Func { *names = append(*names, n); return nil }
	}
	var published, added []string
	img := &config.Image{Name: "app", OSType: "Windows"}
	got, err := AddToLibrary(ctx, filepath.Join(dir, "lib-publish"), img, "1.0.0", src, "V1", steps(&published))
	if err != nil {
		t.Fatal(err)
	}
	lib, err := onprem.Open(filepath.Join(dir, "lib-add"))
	if err != nil {
		t.Fatal(err)
	}
	want, _, err := onprem.AddDisk(ctx, lib, onprem.DiskRequest{Path: raw, Image: "app", Version: "1.0.0", OS: "windows", Step: steps(&added)})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(published, "hash input") || !slices.Contains(added, "hash input") {
		t.Errorf("passes: publish %q, onprem add %q: the publish must not hash the source again", published, added)
	}
	g, w := got.Metadata, want.Metadata
	// a VHDX carries fresh GUIDs, so the stored file's SHA-256 differs
	g.Created, w.Created, g.SHA256, w.SHA256 = time.Time{}, time.Time{}, "", ""
	if !reflect.DeepEqual(g, w) {
		t.Errorf("publish recorded\n%+v\nonprem add recorded\n%+v", g, w)
	}
	// AddDisk's rules hold for a publish too: a generation the partition
	// table contradicts is refused, not recorded
	if _, err := AddToLibrary(ctx, filepath.Join(dir, "lib-publish"), img, "1.0.1", src, "V2", nil); err == nil || !strings.Contains(err.Error(), "contradicts") {
		t.Errorf("a Generation 2 add of a Generation 1 disk: %v", err)
	}
	if g.OS != "windows" || g.Format != "vhdx" || g.Generation != "V1" || g.InputSHA256 != src.SHA256 || g.SourceFingerprint != src.Digest || g.Labels["sourceFile"] != "app.raw" {
		t.Errorf("publish recorded %+v", g)
	}
}
