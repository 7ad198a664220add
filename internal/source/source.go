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

	"github.com/zeebo/blake3"

	"imgpipe/internal/disk"
	"imgpipe/internal/progress"
)

// Info describes the local disk image being published.
type Info struct {
	Path string `json:"path"`
	// Digest identifies the bytes of the source file ("blake3:HEX"). It is
	// recorded on the blob, the managed image and the version, so a re-run
	// knows what it already made from this very disk.
	Digest string `json:"digest"`
	// SHA256 is the hex SHA-256 of the same bytes, the catalog's artifact
	// checksum (and the on-prem library's input checksum). Both come from
	// one read of the file.
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
	s.Digest, s.SHA256, err = fileDigests(ctx, path, p)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// fileDigests reads the file once and returns its "blake3:HEX" digest and
// its hex SHA-256.
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
