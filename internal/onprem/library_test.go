package onprem

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// pattern returns n bytes with data, a 3 MiB zero run and more data, so
// copies exercise both written blocks and holes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	if n > 4<<20 {
		clear(b[1<<20 : 4<<20])
	}
	return b
}

func sum(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

func newLib(t *testing.T) *Library {
	t.Helper()
	l, err := Open(filepath.Join(t.TempDir(), "lib"))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func addBytes(t *testing.T, l *Library, image, version string, data []byte, channels ...string) *AddResult {
	t.Helper()
	res, err := l.Add(context.Background(), AddOptions{
		Image: image, Version: version, Channels: channels,
		Source: bytes.NewReader(data), Size: int64(len(data)),
		Format: "raw", VirtualSize: int64(len(data)), Generation: "V1", OS: "linux",
		SourceFingerprint: "build:" + version,
	})
	if err != nil {
		t.Fatalf("add %s %s: %v", image, version, err)
	}
	return res
}

func TestAddCopiesAndRecords(t *testing.T) {
	l := newLib(t)
	data := pattern(6<<20+123, 1)
	var last, total int64
	res, err := l.Add(context.Background(), AddOptions{
		Image: "web", Version: "1.0.0", Channels: []string{"test"},
		Source: bytes.NewReader(data), Size: int64(len(data)),
		Format: "raw", VirtualSize: int64(len(data)), Generation: "V1", OS: "linux",
		Progress: func(d, tot int64) { last, total = d, tot },
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(res.Path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("library copy differs from the source")
	}
	if res.Metadata.SHA256 != sum(data) {
		t.Errorf("recorded sha256 %s, want %s", res.Metadata.SHA256, sum(data))
	}
	if last != int64(len(data)) || total != int64(len(data)) {
		t.Errorf("progress ended at %d/%d, want %d", last, total, len(data))
	}
	if filepath.Base(res.Path) != "web-1.0.0.raw" {
		t.Errorf("disk file %s", res.Path)
	}
	if err := l.Verify(context.Background(), "web", "1.0.0", nil); err != nil {
		t.Errorf("verify fresh copy: %v", err)
	}
	for _, ch := range []string{"latest", "test"} {
		p, err := l.Pointer("web", ch)
		if err != nil {
			t.Fatal(err)
		}
		if p.Version != "1.0.0" || p.DiskPath != "1.0.0/web-1.0.0.raw" || p.SHA256 != sum(data) {
			t.Errorf("pointer %s = %+v", ch, p)
		}
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	l := newLib(t)
	res := addBytes(t, l, "web", "2024.05.1", pattern(8192, 2))
	// What is on disk reads back identical through Get...
	md, err := l.Get("web", "2024.05.1")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*md, res.Metadata) {
		t.Errorf("Get = %+v\nAdd returned %+v", *md, res.Metadata)
	}
	// ...and has the field names Hyper-V automation reads.
	raw, err := os.ReadFile(filepath.Join(l.Root(), "web", "2024.05.1", "metadata.json"))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"schema": 1.0, "image": "web", "version": "2024.05.1", "generation": "V1", "os": "linux",
		"diskFile": "web-2024.05.1.raw", "format": "raw", "virtualSize": 8192.0, "fileSize": 8192.0,
		"sha256": sum(pattern(8192, 2)), "sourceFingerprint": "build:2024.05.1", "revoked": false,
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("metadata.json %s = %v, want %v", k, m[k], v)
		}
	}
	if _, err := time.Parse(time.RFC3339, m["created"].(string)); err != nil {
		t.Errorf("created is not RFC 3339: %v", m["created"])
	}
	// A revoked version round-trips with its reason and time.
	if _, err := l.Revoke("web", "2024.05.1", "CVE-2024-0001"); err != nil {
		t.Fatal(err)
	}
	md2, err := l.Get("web", "2024.05.1")
	if err != nil {
		t.Fatal(err)
	}
	if !md2.Revoked || md2.RevokedReason != "CVE-2024-0001" || md2.RevokedAt == nil || md2.SHA256 != md.SHA256 {
		t.Errorf("after revoke: %+v", md2)
	}
}

// failingReader fails after limit bytes, like a copy killed halfway.
type failingReader struct {
	r     io.ReaderAt
	limit int64
	t     *testing.T
	check func()
}

func (f *failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.limit {
		if f.check != nil {
			f.check()
		}
		return 0, errors.New("disk unplugged")
	}
	return f.r.ReadAt(p, off)
}

func TestInterruptedAddLeavesNothing(t *testing.T) {
	l := newLib(t)
	data := pattern(8<<20, 3)
	checked := false
	visible := func() {
		checked = true
		// Mid-copy, readers see no trace of the version.
		if _, err := l.Get("web", "1.0.0"); !errors.Is(err, ErrNotFound) {
			t.Errorf("mid-copy Get = %v, want ErrNotFound", err)
		}
		if _, err := os.Stat(filepath.Join(l.Root(), "web", "1.0.0")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mid-copy the version folder is visible: %v", err)
		}
	}
	_, err := l.Add(context.Background(), AddOptions{
		Image: "web", Version: "1.0.0", Channels: []string{"test"},
		Source: &failingReader{r: bytes.NewReader(data), limit: 5 << 20, check: visible}, Size: int64(len(data)),
		Format: "raw", VirtualSize: int64(len(data)), Generation: "V1", OS: "linux",
	})
	if err == nil || !strings.Contains(err.Error(), "disk unplugged") {
		t.Fatalf("Add = %v, want the reader's error", err)
	}
	if !checked {
		t.Error("the failing reader never ran its mid-copy check")
	}
	var left []string
	filepath.WalkDir(l.Root(), func(p string, d os.DirEntry, err error) error {
		if p != l.Root() && p != filepath.Join(l.Root(), "web") {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("interrupted add left %v", left)
	}
	// A cancelled context is an interruption too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Add(ctx, AddOptions{Image: "web", Version: "1.0.1", Source: bytes.NewReader(data), Size: int64(len(data)),
		Format: "raw", Generation: "V1", OS: "linux"}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Add = %v", err)
	}
	if infos, err := l.List(); err != nil || len(infos) != 0 {
		t.Errorf("List after failures = %+v, %v", infos, err)
	}
}

func TestImmutableVersions(t *testing.T) {
	l := newLib(t)
	a := pattern(1<<20, 4)
	first := addBytes(t, l, "web", "1.0.0", a)
	again := addBytes(t, l, "web", "1.0.0", a, "prod")
	if !again.Existed || again.Metadata.Created != first.Metadata.Created {
		t.Errorf("re-adding the same bytes should be a no-op, got %+v", again)
	}
	if p, err := l.Pointer("web", "prod"); err != nil || p.Version != "1.0.0" {
		t.Errorf("re-add should still set the channel: %+v %v", p, err)
	}
	b := pattern(1<<20, 5)
	_, err := l.Add(context.Background(), AddOptions{Image: "web", Version: "1.0.0", Source: bytes.NewReader(b), Size: int64(len(b)),
		Format: "raw", Generation: "V1", OS: "linux"})
	if !errors.Is(err, ErrVersionExists) {
		t.Fatalf("adding different bytes = %v, want ErrVersionExists", err)
	}
	got, _ := os.ReadFile(first.Path)
	if !bytes.Equal(got, a) {
		t.Error("the stored version was changed")
	}
}

func TestVerifyDetectsCorruption(t *testing.T) {
	for _, tc := range []struct {
		name   string
		offset int64
	}{
		{"byte in data", 100},
		{"byte in a hole", 2 << 20},
		{"last byte", 6<<20 - 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := newLib(t)
			res := addBytes(t, l, "web", "1.0.0", pattern(6<<20, 6))
			f, err := os.OpenFile(res.Path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			b := make([]byte, 1)
			f.ReadAt(b, tc.offset)
			b[0] ^= 0x40
			f.WriteAt(b, tc.offset)
			f.Close()
			if err := l.Verify(context.Background(), "web", "1.0.0", nil); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Verify after corrupting offset %d = %v, want ErrCorrupt", tc.offset, err)
			}
			// And an identical re-add refuses to paper over it.
			if _, err := l.Add(context.Background(), AddOptions{Image: "web", Version: "1.0.0", Source: bytes.NewReader(pattern(6<<20, 6)), Size: 6 << 20,
				Format: "raw", Generation: "V1", OS: "linux"}); !errors.Is(err, ErrCorrupt) {
				t.Errorf("re-add over a corrupt copy = %v, want ErrCorrupt", err)
			}
		})
	}
	t.Run("truncated", func(t *testing.T) {
		l := newLib(t)
		res := addBytes(t, l, "web", "1.0.0", pattern(8192, 6))
		os.Truncate(res.Path, 4096)
		if err := l.Verify(context.Background(), "web", "1.0.0", nil); !errors.Is(err, ErrCorrupt) {
			t.Errorf("Verify of a truncated file = %v", err)
		}
	})
}

func TestChannelsAndRevocation(t *testing.T) {
	l := newLib(t)
	l.now = fakeClock()
	addBytes(t, l, "web", "1.0.0", pattern(4096, 1), "test")
	addBytes(t, l, "web", "1.1.0", pattern(4096, 2), "test")
	if err := l.SetChannel("web", "1.0.0", "prod"); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ ref, want string }{
		{"latest", "1.1.0"}, {"test", "1.1.0"}, {"prod", "1.0.0"}, {"1.0.0", "1.0.0"},
	} {
		md, err := l.Resolve("web", tc.ref)
		if err != nil || md.Version != tc.want {
			t.Errorf("Resolve(%s) = %v, %v; want %s", tc.ref, md, err, tc.want)
		}
	}
	if _, err := l.Resolve("web", "staging"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Resolve(unknown channel) = %v", err)
	}
	infos, err := l.List()
	if err != nil || len(infos) != 1 {
		t.Fatalf("List = %+v, %v", infos, err)
	}
	if want := map[string]string{"test": "1.1.0", "prod": "1.0.0"}; !reflect.DeepEqual(infos[0].Channels, want) || infos[0].Latest != "1.1.0" || len(infos[0].Versions) != 2 {
		t.Errorf("List = %+v", infos[0])
	}
	// Revoking the latest moves latest back; promotion of a revoked version fails.
	if _, err := l.Revoke("web", "1.1.0", "broken sshd"); err != nil {
		t.Fatal(err)
	}
	if p, _ := l.Pointer("web", "latest"); p == nil || p.Version != "1.0.0" {
		t.Errorf("latest after revoking 1.1.0 = %+v", p)
	}
	if err := l.SetChannel("web", "1.1.0", "prod"); !errors.Is(err, ErrRevoked) {
		t.Errorf("promoting a revoked version = %v", err)
	}
	if _, err := l.Revoke("web", "1.0.0", "also broken"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Pointer("web", "latest"); !errors.Is(err, ErrNotFound) {
		t.Errorf("latest with every version revoked = %v", err)
	}
	if err := l.SetChannel("web", "1.0.0", "latest"); err == nil {
		t.Error(`channel "latest" must be refused`)
	}
}

func fakeClock() func() time.Time {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	return func() time.Time { t0 = t0.Add(time.Minute); return t0 }
}

func TestNames(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"web", true}, {"1.2.3", true}, {"ubuntu-22.04_lts", true},
		{"", false}, {".hidden", false}, {"a/b", false}, {`a\b`, false}, {"..", false},
		{"trailing.", false}, {"con", false}, {"NUL.txt", false}, {"lpt1", false},
		{"channels", false}, {"latest.json", false}, {"a b", false}, {"it's", false},
		{strings.Repeat("a", 101), false},
	} {
		if err := checkName("image", tc.name); (err == nil) != tc.ok {
			t.Errorf("checkName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestReAddSameInputAfterConversion(t *testing.T) {
	// A converted disk (VHDX) differs byte-wise on every conversion; the
	// input's hash is what makes a re-add idempotent.
	l := newLib(t)
	stored := pattern(8192, 7)
	add := func(data []byte, input string) (*AddResult, error) {
		return l.Add(context.Background(), AddOptions{Image: "web", Version: "1", Source: bytes.NewReader(data), Size: int64(len(data)),
			Format: "vhdx", Generation: "V2", OS: "linux", InputSHA256: input})
	}
	if _, err := add(stored, "input-a"); err != nil {
		t.Fatal(err)
	}
	res, err := add(pattern(8192, 8), "input-a")
	if err != nil || !res.Existed || res.Metadata.SHA256 != sum(stored) {
		t.Errorf("same input, new conversion: %+v %v", res, err)
	}
	if _, err := add(pattern(8192, 8), "input-b"); !errors.Is(err, ErrVersionExists) {
		t.Errorf("other input = %v, want ErrVersionExists", err)
	}
}

func TestDelete(t *testing.T) {
	l := newLib(t)
	addBytes(t, l, "web", "1.0.0", pattern(1<<20, 1))
	addBytes(t, l, "web", "1.1.0", pattern(1<<20, 2), "prod")
	addBytes(t, l, "web", "1.2.0", pattern(1<<20, 3))

	// A channel's version is refused, and stays whole.
	if err := l.Delete("web", "1.1.0"); err == nil || !strings.Contains(err.Error(), "channel prod") {
		t.Fatalf("deleting prod's version: %v", err)
	}
	if _, err := l.Get("web", "1.1.0"); err != nil {
		t.Fatalf("refused delete damaged the version: %v", err)
	}
	// Deleting latest moves latest back to the newest remaining version.
	if err := l.Delete("web", "1.2.0"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get("web", "1.2.0"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted version still readable: %v", err)
	}
	if p, err := l.Pointer("web", "latest"); err != nil || p.Version != "1.1.0" {
		t.Fatalf("latest after delete: %+v %v", p, err)
	}
	if err := l.Delete("web", "1.0.0"); err != nil {
		t.Fatal(err)
	}
	vs, err := l.Versions("web")
	if err != nil || len(vs) != 1 || vs[0].Version != "1.1.0" {
		t.Fatalf("versions left: %+v %v", vs, err)
	}
	entries, _ := os.ReadDir(filepath.Join(l.Root(), "web"))
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".deleting-") {
			t.Errorf("left behind: %s", e.Name())
		}
	}
	if err := l.Delete("web", "9.9.9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleting a missing version: %v", err)
	}
}
