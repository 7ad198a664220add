package disk

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/zstd"
)

// qcowSpec describes a small qcow2 image built in memory by the tests and
// the fuzzer (which must not depend on qemu-img being installed). The
// layout is the simplest valid one: header, L1, L2 tables, data clusters,
// then compressed data packed byte by byte. Refcounts are not written
// (imgpipe does not read them).
type qcowSpec struct {
	size        int64
	clusterBits uint
	version     uint32 // 2 or 3 (0: 3)
	extL2       bool
	compress    string           // "", "zlib", "zstd"
	data        map[int64][]byte // guest cluster -> content (shorter is zero padded)
	zeros       []int64          // guest clusters marked as zero clusters (v3)
	incompat    uint64           // extra incompatible feature bits
}

func buildQcow2(t testing.TB, s qcowSpec) []byte {
	t.Helper()
	if s.version == 0 {
		s.version = 3
	}
	cs := int64(1) << s.clusterBits
	words := int64(1)
	if s.extL2 {
		words = 2
	}
	l2Entries := cs / (8 * words)
	covers := cs * l2Entries
	need := (s.size + covers - 1) / covers
	l1Clusters := (need*8 + cs - 1) / cs
	img := make([]byte, cs*(1+l1Clusters))
	grow := func() int64 { // a new cluster at the end
		off := int64(len(img))
		img = append(img, make([]byte, cs)...)
		return off
	}
	// header
	h := img
	copy(h, qcow2Magic)
	binary.BigEndian.PutUint32(h[4:], s.version)
	binary.BigEndian.PutUint32(h[20:], uint32(s.clusterBits))
	binary.BigEndian.PutUint64(h[24:], uint64(s.size))
	binary.BigEndian.PutUint32(h[36:], uint32(need))
	binary.BigEndian.PutUint64(h[40:], uint64(cs))
	if s.version >= 3 {
		inc := s.incompat
		if s.extL2 {
			inc |= qcow2IncompatExtL2
		}
		if s.compress == "zstd" {
			inc |= qcow2IncompatCompression
			h[104] = qcow2CompressionZstd
		}
		binary.BigEndian.PutUint64(h[72:], inc)
		binary.BigEndian.PutUint32(h[96:], 4)
		binary.BigEndian.PutUint32(h[100:], 112)
	}
	l2Of := map[int64]int64{}
	entry := func(c int64) int64 { // file offset of guest cluster c's L2 entry
		i := c / l2Entries
		off, ok := l2Of[i]
		if !ok {
			off = grow()
			l2Of[i] = off
			binary.BigEndian.PutUint64(img[cs+8*i:], uint64(off)|1<<63)
		}
		return off + (c%l2Entries)*8*words
	}
	keys := make([]int64, 0, len(s.data))
	for c := range s.data {
		keys = append(keys, c)
	}
	slices.Sort(keys)
	var packed []struct {
		at   int64
		blob []byte
	}
	for _, c := range keys {
		e := entry(c)
		if s.compress == "" {
			host := grow()
			copy(img[host:], s.data[c])
			binary.BigEndian.PutUint64(img[e:], uint64(host)|1<<63)
			if s.extL2 {
				binary.BigEndian.PutUint64(img[e+8:], 0xffffffff)
			}
			continue
		}
		full := make([]byte, cs)
		copy(full, s.data[c])
		packed = append(packed, struct {
			at   int64
			blob []byte
		}{e, compressCluster(t, s.compress, full)})
	}
	for _, c := range s.zeros {
		e := entry(c)
		if s.extL2 {
			binary.BigEndian.PutUint64(img[e+8:], 0xffffffff<<32)
		} else {
			binary.BigEndian.PutUint64(img[e:], qcow2ZeroFlag)
		}
	}
	if len(packed) > 0 {
		pos := int64(len(img))
		x := 62 - (s.clusterBits - 8)
		for _, p := range packed {
			img = append(img, p.blob...)
			sectors := (pos+int64(len(p.blob))-1)>>9 - pos>>9
			binary.BigEndian.PutUint64(img[p.at:], qcow2Compressed|uint64(pos)|uint64(sectors)<<x)
			pos += int64(len(p.blob))
		}
		// end on a whole cluster, as QEMU leaves the file
		img = append(img, make([]byte, (cs-int64(len(img))%cs)%cs)...)
	}
	return img
}

func compressCluster(t testing.TB, kind string, b []byte) []byte {
	var out bytes.Buffer
	switch kind {
	case "zlib":
		w, err := flate.NewWriter(&out, flate.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
	case "zstd":
		w, err := zstd.NewWriter(&out, zstd.WithEncoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		w.Write(b)
		w.Close()
	default:
		t.Fatalf("compression %q", kind)
	}
	return out.Bytes()
}

// textCluster is compressible, distinct content for guest cluster c.
func textCluster(c int64, n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		b.WriteString("imgpipe qcow2 test cluster ")
		b.WriteString(string(rune('A' + c%26)))
		binary.Write(&b, binary.BigEndian, uint32(c*1000+int64(i)))
		b.WriteByte('\n')
	}
	return b.Bytes()[:n]
}
