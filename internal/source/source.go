// Package source inspects the disk image a version is made from, in one
// read: its digests, its Hyper-V generation and the size of its Azure-ready
// fixed VHD.
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/zeebo/blake3"

	"imgpipe/internal/disk"
	"imgpipe/internal/progress"
)

// Info describes the local disk image being published.
type Info struct {
	Path string `json:"path"`
	// Digest identifies the bytes of the source file: "sha256:HEX"
	// (DigestOf), the one fingerprint of a source in the catalog's lineage,
	// on the blob, the managed image and the version in Azure, and in the
	// on-prem library, so a re-run knows what it already made from this
	// very disk.
	Digest string `json:"digest"`
	// SHA256 is the hex of the same SHA-256 (the catalog's artifact
	// checksum, the on-prem library's input checksum).
	SHA256 string `json:"sha256"`
	// Legacy are the digests earlier imgpipe releases recorded for the same
	// bytes ("blake3:HEX"), so what they made is still recognised (Is).
	// Every digest comes from one read of the file.
	Legacy []string `json:"legacy_digests,omitempty"`
	// Generation is what the partition table says ("V1", "V2"), or "" when
	// it cannot tell.
	Generation string `json:"generation,omitempty"`
	// GenerationErr says why Generation is empty.
	GenerationErr string `json:"generation_error,omitempty"`
	// VirtualSize is the disk's virtual size (what a VM sees).
	VirtualSize int64 `json:"virtual_size"`
	// VHDSize is the size of the Azure-ready fixed VHD made from the source.
	VHDSize int64 `json:"vhd_size"`
}

// Inspect opens the disk image at path, detects its Hyper-V generation and
// hashes the file (once, for every digest).
func Inspect(ctx context.Context, path string) (*Info, error) { return InspectProgress(ctx, path, nil) }

// InspectProgress is Inspect reporting the bytes hashed to p (if not nil).
func InspectProgress(ctx context.Context, path string, p progress.Func) (*Info, error) {
	img, err := disk.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the image source: %w", err)
	}
	defer img.Close()
	s := &Info{Path: path, VirtualSize: img.Size(), VHDSize: disk.AzureVHD(img).Size()}
	if g, err := disk.DetectGeneration(img); err == nil {
		s.Generation = string(g)
	} else {
		s.GenerationErr = err.Error()
	}
	legacy, sha, err := fileDigests(ctx, path, p)
	if err != nil {
		return nil, err
	}
	s.Digest, s.SHA256, s.Legacy = DigestOf(sha), sha, []string{legacy}
	return s, nil
}

// DigestOf is the digest of bytes whose SHA-256 is sha256Hex: "sha256:HEX".
func DigestOf(sha256Hex string) string { return "sha256:" + sha256Hex }

// Is reports whether recorded (a tag, blob metadata, a lineage
// fingerprint) names the bytes of this source: its digest, or a digest an
// earlier release recorded for them.
func (s *Info) Is(recorded string) bool {
	if recorded == "" {
		return false
	}
	return recorded == s.Digest || slices.Contains(s.Legacy, recorded)
}

// fileDigests reads the file once and returns its legacy "blake3:HEX"
// digest and its hex SHA-256.
func fileDigests(ctx context.Context, path string, p progress.Func) (digest, sha string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", "", fmt.Errorf("hash the image source: %w", err)
	}
	defer f.Close()
	var total int64
	if st, err := f.Stat(); err == nil {
		total = st.Size()
	}
	var done int64
	b3, s2 := blake3.New(), sha256.New()
	h := io.MultiWriter(b3, s2)
	buf := make([]byte, 1<<20)
	for {
		if err := ctx.Err(); err != nil {
			return "", "", err
		}
		n, err := f.Read(buf)
		h.Write(buf[:n])
		if done += int64(n); p != nil {
			p(done, total)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", "", fmt.Errorf("hash the image source: %w", err)
		}
	}
	return "blake3:" + hex.EncodeToString(b3.Sum(nil)), hex.EncodeToString(s2.Sum(nil)), nil
}
