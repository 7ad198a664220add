// Package source inspects the disk image a version is made from, in one
// read: its digest (SHA-256), its Hyper-V generation and the size of its
// Azure-ready fixed VHD. The BLAKE3 digest earlier releases recorded is
// computed only when such a recorded digest must be checked (Info.Is).
package source

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

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
	// Generation is what the partition table says ("V1", "V2"), or "" when
	// it cannot tell.
	Generation string `json:"generation,omitempty"`
	// GenerationErr says why Generation is empty.
	GenerationErr string `json:"generation_error,omitempty"`
	// VirtualSize is the disk's virtual size (what a VM sees).
	VirtualSize int64 `json:"virtual_size"`
	// VHDSize is the size of the Azure-ready fixed VHD made from the source.
	VHDSize int64 `json:"vhd_size"`

	// legacy computes, on first need only, the digest earlier releases
	// recorded ("blake3:HEX"); shared by copies of the Info.
	legacy *legacyDigest
}

// LegacyPrefix starts the digests earlier imgpipe releases recorded for a
// source (Azure tags, blob metadata, lineage fingerprints): BLAKE3 of the
// file's bytes. They are still recognised (Is), and computed only then.
const LegacyPrefix = "blake3:"

// Inspect opens the disk image at path, detects its Hyper-V generation and
// hashes the file (SHA-256, in one read).
func Inspect(ctx context.Context, path string) (*Info, error) { return InspectProgress(ctx, path, nil) }

// InspectProgress is Inspect reporting the bytes hashed to p (if not nil).
//
// ctx also bounds the one further read a legacy digest may need later (Is).
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
	sha, _, err := fileDigests(ctx, path, p, false)
	if err != nil {
		return nil, err
	}
	s.Digest, s.SHA256 = DigestOf(sha), sha
	s.legacy = &legacyDigest{ctx: ctx}
	return s, nil
}

// DigestOf is the digest of bytes whose SHA-256 is sha256Hex: "sha256:HEX".
func DigestOf(sha256Hex string) string { return "sha256:" + sha256Hex }

// Is reports whether recorded (a tag, blob metadata, a lineage
// fingerprint) names the bytes of this source: its digest, or the legacy
// digest an earlier release recorded for them. Only a recorded legacy
// digest costs a read of the file (once per Info, BLAKE3 and SHA-256
// together): the bytes must still be those inspected, or the legacy digest
// is not theirs and Is says false.
func (s *Info) Is(recorded string) bool {
	switch {
	case recorded == "":
		return false
	case recorded == s.Digest:
		return true
	case strings.HasPrefix(recorded, LegacyPrefix) && s.legacy != nil:
		d, err := s.legacy.of(s)
		return err == nil && d == recorded
	}
	return false
}

// LegacyHashed reports whether this source's legacy digest was computed
// (a recorded legacy digest had to be checked).
func (s *Info) LegacyHashed() bool {
	if s.legacy == nil {
		return false
	}
	s.legacy.mu.Lock()
	defer s.legacy.mu.Unlock()
	return s.legacy.done
}

type legacyDigest struct {
	ctx    context.Context // Inspect's
	mu     sync.Mutex
	done   bool
	digest string
	err    error
}

func (l *legacyDigest) of(s *Info) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.done = true
		sha, b3, err := fileDigests(l.ctx, s.Path, nil, true)
		switch {
		case err != nil:
			l.err = err
		case sha != s.SHA256:
			l.err = fmt.Errorf("%s changed since it was inspected (SHA-256 %s, now %s)", s.Path, s.SHA256, sha)
		default:
			l.digest = LegacyPrefix + b3
		}
	}
	return l.digest, l.err
}

// fileDigests reads the file once and returns its hex SHA-256 and, with
// withBLAKE3, its hex BLAKE3 in the same read.
func fileDigests(ctx context.Context, path string, p progress.Func, withBLAKE3 bool) (sha, b3 string, err error) {
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
	s2 := sha256.New()
	var h io.Writer = s2
	var bh *blake3.Hasher
	if withBLAKE3 {
		bh = blake3.New()
		h = io.MultiWriter(bh, s2)
	}
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
	if bh != nil {
		b3 = hex.EncodeToString(bh.Sum(nil))
	}
	return hex.EncodeToString(s2.Sum(nil)), b3, nil
}
