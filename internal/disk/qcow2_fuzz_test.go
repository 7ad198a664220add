package disk

import (
	"path/filepath"
	"sync"
	"testing"
)

// FuzzQcow2 mutates valid qcow2 images built in memory (v3 with zero
// clusters, v2, zlib, zstd, extended L2) with a fuzzed patch and
// truncation. Whatever the bytes, Open and every method of the result
// return errors rather than panic, and work stays bounded by the file.

var (
	qcowFuzzOnce  sync.Once
	qcowFuzzBases [][]byte
)

func qcowFuzzSeeds(t testing.TB) [][]byte {
	qcowFuzzOnce.Do(func() {
		mk := func(s qcowSpec) []byte {
			cs := int64(1) << s.clusterBits
			s.size = 40*cs + 1536
			s.data = map[int64][]byte{0: textCluster(0, int(cs)), 3: textCluster(3, 300), 17: textCluster(17, int(cs)), 40: textCluster(40, 1536)}
			if s.version != 2 {
				s.zeros = []int64{1, 20}
			}
			return buildQcow2(t, s)
		}
		qcowFuzzBases = [][]byte{
			mk(qcowSpec{clusterBits: 12}),                                // v3, 4 KiB clusters, zero clusters
			mk(qcowSpec{clusterBits: 16, version: 2}),                    // v2, 64 KiB
			mk(qcowSpec{clusterBits: 12, compress: "zlib"}),              // deflate
			mk(qcowSpec{clusterBits: 12, compress: "zstd"}),              // zstd
			mk(qcowSpec{clusterBits: 14, extL2: true}),                   // subclusters
			mk(qcowSpec{clusterBits: 14, extL2: true, compress: "zstd"}), // both
			mk(qcowSpec{clusterBits: 9}),                                 // 512-byte clusters: many L2 tables
		}
	})
	return qcowFuzzBases
}

func FuzzQcow2(f *testing.F) {
	bases := qcowFuzzSeeds(f)
	for i := range bases {
		f.Add(uint8(i), uint32(0), []byte{}, uint32(0))
	}
	// header fields
	f.Add(uint8(0), uint32(20), []byte{0, 0, 0, 21}, uint32(0))                          // cluster bits
	f.Add(uint8(0), uint32(24), []byte{0x40, 0, 0, 0, 0, 0, 0, 0}, uint32(0))            // virtual size 2^62
	f.Add(uint8(0), uint32(24), []byte{0, 0, 0x40, 0, 0, 0, 0, 0}, uint32(0))            // 64 TiB
	f.Add(uint8(0), uint32(36), []byte{0xff, 0xff, 0xff, 0xff}, uint32(0))               // L1 size
	f.Add(uint8(0), uint32(40), []byte{0, 0, 0, 0, 0, 0, 0x10, 0}, uint32(0))            // L1 offset
	f.Add(uint8(0), uint32(72), []byte{0, 0, 0, 0, 0, 0, 0, 0x10}, uint32(0))            // extended L2 on a 4 KiB image
	f.Add(uint8(1), uint32(4), []byte{0, 0, 0, 3}, uint32(0))                            // v2 claimed v3
	f.Add(uint8(3), uint32(104), []byte{0}, uint32(0))                                   // zstd data read as zlib
	f.Add(uint8(0), uint32(8), []byte{0, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 9}, uint32(0)) // backing file
	f.Add(uint8(0), uint32(100), []byte{0, 0, 0x10, 0}, uint32(0))                       // header length
	f.Add(uint8(0), uint32(112), []byte{0x68, 0x03, 0xf8, 0x57, 0, 0, 0, 48}, uint32(0)) // feature table
	f.Add(uint8(0), uint32(4096), []byte{0x80, 0, 0, 0, 0, 0, 0x20, 0}, uint32(0))       // L1 entry -> L2 elsewhere
	f.Add(uint8(0), uint32(8192), []byte{0x80, 0, 0, 0, 0, 0, 0x20, 0}, uint32(0))       // L2 entry -> the L2 table
	f.Add(uint8(2), uint32(8192), []byte{0x7f, 0xff, 0xff, 0xff}, uint32(0))             // compressed descriptor
	f.Add(uint8(4), uint32(32776), []byte{0xff, 0xff, 0xff, 0xff}, uint32(0))            // subcluster bitmap
	f.Add(uint8(2), uint32(0), []byte{}, uint32(20000))                                  // truncated in the data
	f.Add(uint8(6), uint32(0), []byte{}, uint32(3000))                                   // truncated in the tables
	f.Fuzz(func(t *testing.T, base uint8, off uint32, data []byte, trunc uint32) {
		b := bases[int(base)%len(bases)]
		if len(data) > 4096 {
			data = data[:4096]
		}
		m := &patched{base: b, size: int64(len(b)), patches: []patch{{int64(int(off) % len(b)), data}}}
		if trunc != 0 && int(trunc) < len(b) {
			m.size = int64(trunc)
		}
		img, err := openBacking(m, m.size)
		if err != nil {
			return
		}
		defer img.Close()
		exerciseImage(t, img)
	})
}

// TestQcow2FuzzSeedsAreValid keeps the fuzz bases honest: each opens as
// qcow2 from a file and reads back.
func TestQcow2FuzzSeedsAreValid(t *testing.T) {
	for i, b := range qcowFuzzSeeds(t) {
		img, err := Open(writeBytes(t, filepath.Join(t.TempDir(), "seed.qcow2"), b))
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if img.Format() != FormatQcow2 {
			t.Fatalf("seed %d: format %s", i, img.Format())
		}
		exerciseImage(t, img)
		img.Close()
	}
}
