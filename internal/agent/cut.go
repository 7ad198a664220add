package agent

import (
	"strings"
	"unicode/utf8"
)

// Cut shortens s to at most n bytes on a rune boundary, as valid UTF-8
// (invalid bytes become U+FFFD first): the one truncation of the text a
// report carries (errors, details, command output), for the agent and for
// the test gate reading its reports.
func Cut(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
