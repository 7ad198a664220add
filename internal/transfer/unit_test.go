package transfer

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestNonZeroRuns(t *testing.T) {
	sec := func(n int, b byte) []byte { return bytes.Repeat([]byte{b}, n*sectorSize) }
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	tests := []struct {
		name string
		p    []byte
		base int64
		want []span
	}{
		{"all zero", sec(8, 0), 0, nil},
		{"all data", sec(3, 1), 1024, []span{{1024, 1024 + 3*512}}},
		{"zero run inside data", cat(sec(1, 1), sec(2, 0), sec(1, 1)), 0, []span{{0, 512}, {1536, 2048}}},
		{"one byte set in a sector", cat(sec(2, 0), append(make([]byte, 511), 7), sec(1, 0)), 4096, []span{{4096 + 1024, 4096 + 1536}}},
		{"data at the end", cat(sec(3, 0), sec(2, 9)), 0, []span{{1536, 2560}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := nonZeroRuns(tc.p, tc.base, nil)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

func TestSpanSet(t *testing.T) {
	tests := []struct {
		name string
		add  []span
		want []span
	}{
		{"disjoint sorted", []span{{0, 10}, {20, 30}}, []span{{0, 10}, {20, 30}}},
		{"reverse order", []span{{20, 30}, {0, 10}}, []span{{0, 10}, {20, 30}}},
		{"touching merge", []span{{0, 10}, {10, 20}}, []span{{0, 20}}},
		{"bridge", []span{{0, 10}, {20, 30}, {40, 50}, {5, 45}}, []span{{0, 50}}},
		{"inside", []span{{0, 100}, {10, 20}}, []span{{0, 100}}},
		{"empty ignored", []span{{5, 5}, {7, 3}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var ss spanSet
			for _, s := range tc.add {
				ss.add(s)
			}
			want := spanSet{s: tc.want}
			if !ss.equal(&want) {
				t.Fatalf("got %v, want %v", ss.s, tc.want)
			}
		})
	}
	var ss spanSet
	ss.add(span{0, 100})
	ss.add(span{200, 300})
	for _, c := range []struct {
		s    span
		want bool
	}{{span{0, 100}, true}, {span{50, 60}, true}, {span{90, 210}, false}, {span{100, 200}, false}, {span{250, 301}, false}} {
		if got := ss.contains(c.s); got != c.want {
			t.Errorf("contains(%v) = %v, want %v", c.s, got, c.want)
		}
	}
}

func TestScrub(t *testing.T) {
	tests := []struct{ in, secret string }{
		{`Put "https://acct.blob.core.windows.net/c/b.vhd?sv=2023-01-03&sig=AbCdEf%2B123&se=2030": connection reset`, "AbCdEf"},
		{`DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlq;BlobEndpoint=http://x`, "Eby8vdM02"},
		{`token sig=QWERTY123 leaked`, "QWERTY123"},
		{`http://127.0.0.1:1/devstoreaccount1/c/d?se=1&sp=rw&sig=ZZZ9`, "ZZZ9"},
	}
	for _, tc := range tests {
		got := Scrub(tc.in)
		if strings.Contains(got, tc.secret) {
			t.Errorf("Scrub(%q) = %q still holds %q", tc.in, got, tc.secret)
		}
	}
	if got := Scrub("put pages [0, 512): reset by peer"); got != "put pages [0, 512): reset by peer" {
		t.Errorf("Scrub changed an innocent message: %q", got)
	}
}

func sampleCheckpoint() *Checkpoint {
	c := &Checkpoint{
		Version: checkpointVersion,
		Source:  SourceFingerprint{Path: "/x/a.vhdx", FileSize: 123, ModTime: time.Unix(1700000000, 0).UTC(), Format: "vhdx", VirtualSize: 1 << 30, Content: "ab"},
		Target:  TargetIdentity{Kind: "blob", URL: "http://127.0.0.1:1/devstoreaccount1/c/b"},
		Marker:  "m",
		Plan:    PlanFingerprint{Algorithm: planAlgorithm, Window: window, Sector: sectorSize, Extents: "cd"},
	}
	c.setCompleted([]span{{0, 4096}, {8192, 1 << 20}})
	return c
}

func TestCheckpointRoundTripAndValidation(t *testing.T) {
	c := sampleCheckpoint()
	b, err := encodeCheckpoint(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := decodeCheckpoint(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got.CompletedBytes != c.CompletedBytes || len(got.Completed) != 2 || got.Target != c.Target {
		t.Fatalf("round trip changed the checkpoint: %+v", got)
	}
	bad := []struct {
		name string
		edit func(c *Checkpoint)
	}{
		{"version", func(c *Checkpoint) { c.Version = 9 }},
		{"overlap", func(c *Checkpoint) { c.Completed = [][2]int64{{0, 100}, {50, 200}}; c.CompletedBytes = 250 }},
		{"past end", func(c *Checkpoint) { c.Completed = [][2]int64{{0, 2 << 30}}; c.CompletedBytes = 2 << 30 }},
		{"bytes mismatch", func(c *Checkpoint) { c.CompletedBytes++ }},
		{"kind", func(c *Checkpoint) { c.Target.Kind = "ftp" }},
		{"size", func(c *Checkpoint) { c.Source.VirtualSize = 1000 }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := sampleCheckpoint()
			tc.edit(c)
			b, _ := encodeCheckpoint(c)
			if _, err := decodeCheckpoint(bytes.NewReader(b)); err == nil {
				t.Fatal("accepted an invalid checkpoint")
			}
		})
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	b, _ := encodeCheckpoint(sampleCheckpoint())
	f.Add(b)
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1,"completed":[[0,1],[1,2]]}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := decodeCheckpoint(bytes.NewReader(data))
		if err != nil {
			return
		}
		// Whatever is accepted must re-encode to something accepted and equal.
		b, err := encodeCheckpoint(c)
		if err != nil {
			t.Fatal(err)
		}
		c2, err := decodeCheckpoint(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("re-encoded checkpoint rejected: %v", err)
		}
		if c2.CompletedBytes != c.CompletedBytes || len(c2.Completed) != len(c.Completed) {
			t.Fatal("re-encoding changed the checkpoint")
		}
		ss := c.completedSet()
		if ss.total() != c.CompletedBytes {
			t.Fatalf("completed set covers %d bytes, checkpoint says %d", ss.total(), c.CompletedBytes)
		}
	})
}

func BenchmarkNonZeroRuns(b *testing.B) {
	p := make([]byte, window)
	for i := 0; i < len(p); i += 64 << 10 {
		p[i] = 1
	}
	b.SetBytes(int64(len(p)))
	var out []span
	for b.Loop() {
		out = nonZeroRuns(p, 0, out[:0])
	}
}

// BenchmarkHashZeros measures the MD5 cost of the zero space of a virtual
// disk (MD5 cannot skip it; it runs beside the upload).
func BenchmarkHashZeros(b *testing.B) {
	const size = 256 << 20
	b.SetBytes(size)
	for b.Loop() {
		if _, err := hashVHD(b.Context(), bytes.NewReader(nil), size, nil); err != nil {
			b.Fatal(err)
		}
	}
}
