package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zeebo/blake3"
)

func sourceFile(t testing.TB, size int) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, size)
	copy(data[size/2:], "some bytes")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, data
}

func legacyOf(data []byte) string {
	sum := blake3.Sum256(data)
	return LegacyPrefix + hex.EncodeToString(sum[:])
}

// TestOneDigest: a source has one digest, sha256:HEX of its bytes (the
// catalog's, Azure's and the library's), and still answers to the BLAKE3
// digest earlier releases recorded on what they made. BLAKE3 is computed
// only when such a digest is asked about.
func TestOneDigest(t *testing.T) {
	path, data := sourceFile(t, 2<<20)
	info, err := Inspect(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if info.Digest != want || DigestOf(info.SHA256) != want {
		t.Fatalf("digest %q sha256 %q, want %q", info.Digest, info.SHA256, want)
	}
	copied := *info // what a plan keeps shares the lazily made digest
	for _, tc := range []struct {
		recorded string
		want     bool
	}{{want, true}, {"", false}, {"sha256:" + strings.Repeat("0", 64), false}, {"md5:abc", false}} {
		if got := info.Is(tc.recorded); got != tc.want {
			t.Errorf("Is(%q) = %v, want %v", tc.recorded, got, tc.want)
		}
	}
	if info.LegacyHashed() {
		t.Fatal("BLAKE3 was computed though no legacy digest was asked about")
	}
	for _, tc := range []struct {
		recorded string
		want     bool
	}{{legacyOf(data), true}, {LegacyPrefix + strings.Repeat("0", 64), false}, {want, true}} {
		if got := info.Is(tc.recorded); got != tc.want {
			t.Errorf("Is(%q) = %v, want %v", tc.recorded, got, tc.want)
		}
	}
	if !info.LegacyHashed() || !copied.LegacyHashed() || !copied.Is(legacyOf(data)) {
		t.Fatal("a legacy digest was checked but not recorded as hashed (or not shared with a copy)")
	}
}

// TestLegacyDigestOfChangedSource: when the file changed after it was
// inspected, a legacy digest of the new bytes is not this source's.
func TestLegacyDigestOfChangedSource(t *testing.T) {
	path, data := sourceFile(t, 1<<20)
	info, err := Inspect(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	data[0] = 1
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if info.Is(legacyOf(data)) {
		t.Fatal("the legacy digest of bytes written after the inspection was taken for the source's")
	}
	if (&Info{Digest: "sha256:x"}).Is(legacyOf(data)) {
		t.Fatal("an Info not made by Inspect claimed a legacy digest")
	}
}

// BenchmarkSourceRead measures what Inspect's read of a source costs now
// (SHA-256 only) against the read earlier releases made on every publish
// (SHA-256 and BLAKE3 together; now done only to check a legacy digest),
// alternating the two in one run on the same file and reporting the
// ratio after/before. The file is IMGPIPE_BENCH_SOURCE_MIB MiB (default
// 1024) of non-zero data, read from the page cache after the first pass.
//
//	go test -run '^$' -bench SourceRead -benchtime 3x ./internal/source
func BenchmarkSourceRead(b *testing.B) {
	mib := 1024
	if v := os.Getenv("IMGPIPE_BENCH_SOURCE_MIB"); v != "" {
		var err error
		if mib, err = strconv.Atoi(v); err != nil || mib < 1 {
			b.Fatalf("IMGPIPE_BENCH_SOURCE_MIB=%q: give a number of MiB", v)
		}
	}
	path := filepath.Join(b.TempDir(), "source.raw")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := range chunk {
		chunk[i] = byte(i*7 + i>>8)
	}
	for i := range mib {
		chunk[0] = byte(i)
		if _, err := f.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, _, err := fileDigests(ctx, path, nil, false); err != nil { // warm the page cache
		b.Fatal(err)
	}
	var before, after time.Duration
	n := 0
	for b.Loop() {
		t0 := time.Now()
		if _, b3, err := fileDigests(ctx, path, nil, true); err != nil || b3 == "" {
			b.Fatal(err)
		}
		t1 := time.Now()
		info, err := Inspect(ctx, path)
		if err != nil || info.LegacyHashed() {
			b.Fatal(err)
		}
		before, after, n = before+t1.Sub(t0), after+time.Since(t1), n+1
	}
	mb := float64(mib) * (1 << 20) / 1e6
	b.ReportMetric(before.Seconds()/float64(n), "s-before/op")
	b.ReportMetric(after.Seconds()/float64(n), "s-after/op")
	b.ReportMetric(mb*float64(n)/before.Seconds(), "MB/s-before")
	b.ReportMetric(mb*float64(n)/after.Seconds(), "MB/s-after")
	b.ReportMetric(after.Seconds()/before.Seconds(), "after/before")
}
