package semver

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in, canon string
		ok        bool
	}{
		{"1.2.3", "1.2.3", true},
		{"v1.2.3", "1.2.3", true},
		{"0.0.0", "0.0.0", true},
		{"1.0.0-rc.1+build.5", "1.0.0-rc.1+build.5", true},
		{"1.0.0-alpha-beta", "1.0.0-alpha-beta", true},
		{"1.2", "", false},
		{"1.2.3.4", "", false},
		{"01.2.3", "", false},
		{"1.2.3-01", "", false},
		{"1.2.3-", "", false},
		{"1.2.3+", "", false},
		{"1.2.3-a..b", "", false},
		{"1.2.x", "", false},
		{"-1.2.3", "", false},
		{"99999999999999999999.0.0", "", false},
		{"", "", false},
		{strings.Repeat("1", 300), "", false},
	}
	for _, tc := range tests {
		v, err := Parse(tc.in)
		if (err == nil) != tc.ok {
			t.Errorf("Parse(%q) error = %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if tc.ok && v.String() != tc.canon {
			t.Errorf("Parse(%q) = %s, want %s", tc.in, v, tc.canon)
		}
	}
}

func TestCompare(t *testing.T) {
	// SemVer 2.0.0 precedence example, ascending.
	asc := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2", "1.0.0-beta.11",
		"1.0.0-rc.1", "1.0.0", "1.0.1", "1.9.0", "1.10.0", "2.0.0"}
	for i := range asc {
		for j := range asc {
			want := cmpInt(i, j)
			if got := Compare(asc[i], asc[j]); got != want {
				t.Errorf("Compare(%s, %s) = %d, want %d", asc[i], asc[j], got, want)
			}
		}
	}
	if Compare("garbage", "0.0.1") >= 0 {
		t.Errorf("an invalid version sorts after a valid one")
	}
}

func TestParseAge(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"0", 0, true},
		{"30d", 30 * 24 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"1w2d", 9 * 24 * time.Hour, true},
		{"36h", 36 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"90m", 90 * time.Minute, true},
		{"", 0, false},
		{"-3d", 0, false},
		{"1d-1h", 0, false},
		{"d", 0, false},
		{"3 days", 0, false},
		{"999999999999999999999d", 0, false},
		{"100000000w", 0, false},
	}
	for _, tc := range tests {
		got, err := ParseAge(tc.in)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("ParseAge(%q) = %v, %v; want %v ok=%v", tc.in, got, err, tc.want, tc.ok)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"1.2.3", "v0.0.1", "1.0.0-rc.1+b", "1.0.0-0.a", "1..2", "18446744073709551615.0.0", "1.0.0-α"} {
		f.Add(s, "1.0.0")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		va, err := Parse(a)
		if err == nil {
			back, err := Parse(va.String())
			if err != nil || back.Compare(va) != 0 || back.String() != va.String() {
				t.Fatalf("%q -> %s does not round-trip: %v", a, va, err)
			}
		}
		if x, y := Compare(a, b), Compare(b, a); x != -y {
			t.Fatalf("Compare(%q,%q)=%d but Compare(%q,%q)=%d", a, b, x, b, a, y)
		}
		if Compare(a, a) != 0 {
			t.Fatalf("Compare(%q,%q) != 0", a, a)
		}
	})
}

func FuzzParseAge(f *testing.F) {
	for _, s := range []string{"30d", "2w", "1w2d3h", "0", "-1d", "1.5h", "9223372036854775807d", "1d1d1d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseAge(s)
		if err == nil && d < 0 {
			t.Fatalf("ParseAge(%q) = %v: negative", s, d)
		}
	})
}

func TestParseGallery(t *testing.T) {
	for s, ok := range map[string]bool{
		"1.4.0": true, "0.0.1": true, "2147483647.0.0": true,
		"v1.4.0": false, "1.4.0-rc1": false, "1.4.0+b1": false, "1.4": false, "01.4.0": false,
		"2147483648.0.0": false, "1.4.0.1": false, "": false, "a.b.c": false,
	} {
		if got := ValidGallery(s); got != ok {
			t.Errorf("ValidGallery(%q) = %v, want %v", s, got, ok)
		}
	}
}
