package drift

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// BenchmarkHash compares the two content hashes on file sizes typical of
// /usr (most files are small; a few are large).
func BenchmarkHash(b *testing.B) {
	for _, alg := range []string{HashSHA256, HashBLAKE3} {
		for _, size := range []int{512, 8 << 10, 1 << 20} {
			b.Run(fmt.Sprintf("%s/%d", alg, size), func(b *testing.B) {
				h, _ := newHasher(alg)
				data := make([]byte, size)
				b.SetBytes(int64(size))
				for b.Loop() {
					h.Reset()
					h.Write(data)
					h.Sum(nil)
				}
			})
		}
	}
}

// BenchmarkCheck measures full and quick checks of a generated tree.
func BenchmarkCheck(b *testing.B) {
	root := b.TempDir()
	for i := range 5000 {
		p := filepath.Join(root, fmt.Sprintf("d%02d/f%05d", i%50, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, make([]byte, 100+i%4000), 0o644)
	}
	ctx := context.Background()
	for _, alg := range []string{HashSHA256, HashBLAKE3} {
		base, err := Capture(ctx, root, CaptureOptions{Rules: Rules{Paths: []string{"."}}, Hash: alg})
		if err != nil {
			b.Fatal(err)
		}
		base.CapturedAt = base.CapturedAt.Add(RacyWindow * 2) // not racy: measure the steady state
		for _, depth := range []Depth{Full, Quick} {
			b.Run(fmt.Sprintf("%s/%s", alg, depth), func(b *testing.B) {
				for b.Loop() {
					if _, err := Check(ctx, root, base, CheckOptions{Depth: depth}); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(base.Files))*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			})
		}
	}
}
