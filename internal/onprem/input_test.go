package onprem

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// writeInput writes data to a new file and returns its path.
func writeInput(t *testing.T, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "disk.raw")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// mutateDuring arranges for another goroutine to overwrite n bytes of the
// file at path at offset at, once the add's read of step reaches offset
// after (the read waits until the write is done, so the test is
// deterministic). It returns a function telling whether it ran.
func mutateDuring(t *testing.T, l *Library, path, step string, after, at int64) func() bool {
	t.Helper()
	var once sync.Once
	ran := false
	l.hook = func(s string, off int64) {
		if s != step || off < after {
			return
		}
		once.Do(func() {
			done := make(chan error)
			go func() {
				f, err := os.OpenFile(path, os.O_WRONLY, 0)
				if err == nil {
					_, err = f.WriteAt(bytes.Repeat([]byte{0xAB}, 4096), at)
					if cerr := f.Close(); err == nil {
						err = cerr
					}
				}
				done <- err
			}()
			if err := <-done; err != nil {
				t.Errorf("rewrite the source: %v", err)
			}
			ran = true
		})
	}
	return func() bool { return ran }
}

// assertNotPublished checks that no trace of image/version is visible.
func assertNotPublished(t *testing.T, l *Library, image, version string) {
	t.Helper()
	if _, err := l.Get(image, version); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get after a refused add = %v, want ErrNotFound", err)
	}
	for _, p := range []string{version, "latest.json", filepath.Join("channels", "test.json")} {
		if _, err := os.Lstat(filepath.Join(l.Root(), image, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s exists after a refused add (%v)", p, err)
		}
	}
	entries, _ := os.ReadDir(filepath.Join(l.Root(), image))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".staging") {
			t.Errorf("a refused add left %s", e.Name())
		}
	}
}

// TestAddFileSourceChangedWhileRead: a source rewritten by another writer
// while it is copied never becomes a version, in either stored format, and
// the version name stays free. (Before: with the default conversion the add
// exited 0 with an input SHA-256 matching nothing; with --format keep latest
// and the channel pointed at the torn copy and verify said ok.)
func TestAddFileSourceChangedWhileRead(t *testing.T) {
	for _, convert := range []string{"vhdx", ""} {
		t.Run("convert="+convert, func(t *testing.T) {
			l := newLib(t)
			data := pattern(8<<20, 5)
			path := writeInput(t, data)
			opts := AddOptions{Image: "web", Version: "1.0", Channels: []string{"test"}, Convert: convert,
				Generation: "V1", OS: "linux"}

			// Ahead of the copy: the copy reads the new bytes, the digest
			// taken before has the old ones.
			ran := mutateDuring(t, l, path, "copy input", 2<<20, 6<<20)
			_, err := l.AddFile(context.Background(), path, opts)
			if !ran() {
				t.Fatal("the source was never rewritten during the copy")
			}
			if !errors.Is(err, ErrSourceChanged) {
				t.Fatalf("AddFile of a source rewritten during the copy = %v, want ErrSourceChanged", err)
			}
			assertNotPublished(t, l, "web", "1.0")

			// Behind the digest: the digest taken before is a mixture no
			// copy can match.
			now, _ := os.ReadFile(path)
			ran = mutateDuring(t, l, path, "hash input", 3<<20, 0)
			_, err = l.AddFile(context.Background(), path, opts)
			if !ran() || !errors.Is(err, ErrSourceChanged) {
				t.Fatalf("AddFile of a source rewritten during the first digest = %v (rewritten %v), want ErrSourceChanged", err, ran())
			}
			assertNotPublished(t, l, "web", "1.0")

			// The caller's own digest (publish passes the one it took while
			// inspecting) is the one the copy must match.
			l.hook = nil
			_, err = l.AddFile(context.Background(), path, AddOptions{Image: "web", Version: "1.0", Convert: convert,
				Generation: "V1", OS: "linux", InputSHA256: sum(now)})
			if !errors.Is(err, ErrSourceChanged) {
				t.Fatalf("AddFile with a stale input digest = %v, want ErrSourceChanged", err)
			}
			assertNotPublished(t, l, "web", "1.0")

			// Once the source is stable the same version name is free.
			final, _ := os.ReadFile(path)
			res, err := l.AddFile(context.Background(), path, opts)
			if err != nil {
				t.Fatal(err)
			}
			md := res.Metadata
			if res.Existed || md.InputSHA256 != sum(final) || md.InputFormat != "raw" {
				t.Fatalf("re-add: %+v", res)
			}
			if convert == "" {
				got, _ := os.ReadFile(res.Path)
				if !bytes.Equal(got, final) || md.SHA256 != sum(final) || md.Format != "raw" {
					t.Error("the stored copy is not the input")
				}
			} else if md.Format != "vhdx" || md.VirtualSize != int64(len(final)) {
				t.Errorf("converted: %+v", md)
			}
			if p, err := l.Pointer("web", "test"); err != nil || p.Version != "1.0" {
				t.Errorf("channel after the re-add: %+v %v", p, err)
			}
			if err := l.Verify(context.Background(), "web", "1.0", nil); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestAddFileAfterTheCopyIsSafe: a write to the source after the private
// copy was taken does not matter: the version is the input as digested.
func TestAddFileAfterTheCopyIsSafe(t *testing.T) {
	l := newLib(t)
	data := pattern(6<<20, 9)
	path := writeInput(t, data)
	l.hook = func(step string, _ int64) {
		if step == "commit" {
			os.WriteFile(path, []byte("overwritten"), 0o644)
		}
	}
	res, err := l.AddFile(context.Background(), path, AddOptions{Image: "web", Version: "1", Generation: "V1", OS: "linux"})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(res.Path)
	if !bytes.Equal(got, data) || res.Metadata.InputSHA256 != sum(data) {
		t.Error("the version is not the input as it was digested")
	}
}

// TestVerifyChecksTheInputDigest: a disk stored as given must match the
// input digest recorded, not only its own (a torn copy recorded by an older
// imgpipe had a consistent SHA256 of the torn bytes).
func TestVerifyChecksTheInputDigest(t *testing.T) {
	l := newLib(t)
	path := writeInput(t, pattern(1<<20, 2))
	if _, err := l.AddFile(context.Background(), path, AddOptions{Image: "web", Version: "1", Generation: "V1", OS: "linux"}); err != nil {
		t.Fatal(err)
	}
	mdPath := filepath.Join(l.Root(), "web", "1", "metadata.json")
	for name, edit := range map[string]func(*Metadata){
		"recorded now":       func(md *Metadata) { md.InputSHA256 = strings.Repeat("0", 64) },
		"before InputFormat": func(md *Metadata) { md.InputSHA256, md.InputFormat = strings.Repeat("1", 64), "" },
	} {
		var md Metadata
		b, _ := os.ReadFile(mdPath)
		json.Unmarshal(b, &md)
		edit(&md)
		if err := writeJSON(mdPath, md); err != nil {
			t.Fatal(err)
		}
		if err := l.Verify(context.Background(), "web", "1", nil); !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "input") {
			t.Errorf("%s: Verify of a copy that is not its input = %v, want ErrCorrupt", name, err)
		}
	}
}

// TestConcurrentAddsOfTheSameInput: three adds of identical bytes racing
// for one version: one adds it, the others report it already present (the
// converted VHDX files differ byte-wise; the input digests do not). Before,
// two of the three failed with "added concurrently with other bits".
func TestConcurrentAddsOfTheSameInput(t *testing.T) {
	l := newLib(t)
	data := pattern(6<<20, 4)
	const n = 3
	var paths [n]string
	for i := range paths {
		paths[i] = writeInput(t, data)
	}
	// All three reach the rename before any of them makes it.
	var mu sync.Mutex
	arrived := 0
	all := make(chan struct{})
	l.hook = func(step string, _ int64) {
		if step != "commit" {
			return
		}
		mu.Lock()
		arrived++
		if arrived == n {
			close(all)
		}
		mu.Unlock()
		select {
		case <-all:
		case <-time.After(20 * time.Second):
			t.Error("the adds never all reached the commit")
		}
	}
	var wg sync.WaitGroup
	results := make([]*AddResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			results[i], errs[i] = l.AddFile(context.Background(), paths[i], AddOptions{Image: "web", Version: "2.0",
				Channels: []string{"test"}, Convert: "vhdx", Generation: "V1", OS: "linux"})
		})
	}
	wg.Wait()
	added := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("add %d: %v", i, errs[i])
		}
		if !results[i].Existed {
			added++
		}
		if results[i].Metadata.SHA256 != results[0].Metadata.SHA256 {
			t.Errorf("add %d reports another version: %+v", i, results[i].Metadata)
		}
	}
	if added != 1 {
		t.Errorf("%d adds made the version, want 1", added)
	}
	if err := l.Verify(context.Background(), "web", "2.0", nil); err != nil {
		t.Error(err)
	}
	// Other bytes under the same name are still refused.
	l.hook = nil
	other := writeInput(t, pattern(6<<20, 40))
	if _, err := l.AddFile(context.Background(), other, AddOptions{Image: "web", Version: "2.0", Convert: "vhdx", Generation: "V1", OS: "linux"}); !errors.Is(err, ErrVersionExists) {
		t.Errorf("other bytes = %v, want ErrVersionExists", err)
	}
}

// TestLibraryRefusesSymlinks: a channels/ folder, a version folder or a
// pointer that is a symbolic link is refused with ErrSymlink, and nothing is
// written where it points.
func TestLibraryRefusesSymlinks(t *testing.T) {
	l := newLib(t)
	addBytes(t, l, "web", "1.0", pattern(8192, 1))
	outside := t.TempDir()

	// channels/ -> outside the library
	if err := os.Symlink(outside, filepath.Join(l.Root(), "web", "channels")); err != nil {
		t.Fatal(err)
	}
	if err := l.SetChannel("web", "1.0", "test"); !errors.Is(err, ErrSymlink) {
		t.Errorf("SetChannel through a symlinked channels folder = %v, want ErrSymlink", err)
	}
	path := writeInput(t, pattern(8192, 2))
	if _, err := l.AddFile(context.Background(), path, AddOptions{Image: "web", Version: "1.1", Channels: []string{"test"}, Generation: "V1", OS: "linux"}); !errors.Is(err, ErrSymlink) {
		t.Errorf("AddFile with a channel through a symlinked channels folder = %v, want ErrSymlink", err)
	}
	if _, err := l.Pointer("web", "test"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Pointer = %v, want ErrSymlink", err)
	}
	if _, err := l.List(); !errors.Is(err, ErrSymlink) {
		t.Errorf("List = %v, want ErrSymlink", err)
	}
	if entries, _ := os.ReadDir(outside); len(entries) != 0 {
		t.Errorf("the library wrote outside itself: %v", entries)
	}
	os.Remove(filepath.Join(l.Root(), "web", "channels"))

	// a version folder -> a copy elsewhere
	elsewhere := filepath.Join(outside, "2.0")
	if err := os.CopyFS(elsewhere, os.DirFS(filepath.Join(l.Root(), "web", "1.0"))); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(elsewhere, filepath.Join(l.Root(), "web", "2.0")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get("web", "2.0"); !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), "web/2.0") {
		t.Errorf("Get of a symlinked version folder = %v, want ErrSymlink naming it", err)
	}
	if _, err := l.Versions("web"); !errors.Is(err, ErrSymlink) {
		t.Errorf("Versions = %v, want ErrSymlink", err)
	}
	if _, err := l.AddFile(context.Background(), path, AddOptions{Image: "web", Version: "2.0", Generation: "V1", OS: "linux"}); !errors.Is(err, ErrSymlink) {
		t.Errorf("AddFile onto a symlinked version folder = %v, want ErrSymlink", err)
	}
	os.Remove(filepath.Join(l.Root(), "web", "2.0"))

	// a symlinked disk file inside a real version folder
	disk := filepath.Join(l.Root(), "web", "1.0", "web-1.0.raw")
	os.Rename(disk, filepath.Join(outside, "disk"))
	os.Symlink(filepath.Join(outside, "disk"), disk)
	if err := l.Verify(context.Background(), "web", "1.0", nil); !errors.Is(err, ErrSymlink) {
		t.Errorf("Verify of a symlinked disk = %v, want ErrSymlink", err)
	}
}
