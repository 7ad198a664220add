package onprem

import "strings"

// PSQuote returns s as a PowerShell single-quoted string literal, in which
// nothing is expanded (for other packages' Hyper-V scripts, e.g. the test
// gate's internal/testrun).
// PowerShell treats the typographic quotes U+2018..U+201B as single quotes
// too, so each of them is doubled like the ASCII one.
func PSQuote(s string) string {
	var b strings.Builder
	b.WriteByte('\'')
	for _, r := range s {
		switch r {
		case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
			b.WriteRune(r)
		}
		b.WriteRune(r)
	}
	b.WriteByte('\'')
	return b.String()
}
