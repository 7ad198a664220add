package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOneDigest: a source has one digest, sha256:HEX of its bytes (the
// catalog's, Azure's and the library's), and still answers to the BLAKE3
// digest earlier releases recorded on what they made.
func TestOneDigest(t *testing.T) {
	path := filepath.Join(t.TempDir(), "disk.raw")
	data := make([]byte, 2<<20)
	copy(data[1<<20:], "some bytes")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	info, err := Inspect(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	want := "sha256:" + hex.EncodeToString(sum[:])
	if info.Digest != want || DigestOf(info.SHA256) != want {
		t.Fatalf("digest %q sha256 %q, want %q", info.Digest, info.SHA256, want)
	}
	if len(info.Legacy) != 1 || !strings.HasPrefix(info.Legacy[0], "blake3:") || len(info.Legacy[0]) != len("blake3:")+64 {
		t.Fatalf("legacy digests %q", info.Legacy)
	}
	for _, tc := range []struct {
		recorded string
		want     bool
	}{{want, true}, {info.Legacy[0], true}, {"", false}, {"sha256:" + strings.Repeat("0", 64), false}, {"blake3:" + strings.Repeat("0", 64), false}} {
		if got := info.Is(tc.recorded); got != tc.want {
			t.Errorf("Is(%q) = %v, want %v", tc.recorded, got, tc.want)
		}
	}
}
