package drift

import (
	"crypto/sha256"
	"fmt"
	"hash"

	"github.com/zeebo/blake3"
)

// Hash algorithms. Both give 32-byte digests.
const (
	HashBLAKE3 = "blake3"
	HashSHA256 = "sha256"
)

// DefaultHash is the algorithm Capture uses when none is given. BLAKE3 was
// chosen by measurement (bench/drift.sh and BenchmarkHash): on this project's
// reference machine it hashes /usr faster than SHA-256 even where the CPU has
// SHA extensions, and it is a strong (cryptographic) hash.
const DefaultHash = HashBLAKE3

func newHasher(alg string) (hash.Hash, error) {
	switch alg {
	case HashBLAKE3:
		return blake3.New(), nil
	case HashSHA256:
		return sha256.New(), nil
	}
	return nil, fmt.Errorf("hash %q is not supported: use %s or %s", alg, HashBLAKE3, HashSHA256)
}
