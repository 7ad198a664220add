package agent

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCut(t *testing.T) {
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"exactly", 7, "exactly"},
		{"longer text", 6, "longer"},
		{"héllo", 2, "h"}, // é is two bytes: not split
		{"héllo", 3, "hé"},
		{"a\xffb", 10, "a\uFFFDb"}, // invalid bytes are replaced, even when short
		{"€€", 0, ""},
	} {
		got := Cut(tc.s, tc.n)
		if got != tc.want || len(got) > tc.n || !utf8.ValidString(got) {
			t.Errorf("Cut(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
	long := strings.Repeat("ü", 1000)
	if got := Cut(long, 999); len(got) != 998 || !utf8.ValidString(got) {
		t.Errorf("Cut of 1000 ü to 999 bytes: %d bytes, valid %v", len(got), utf8.ValidString(got))
	}
}
