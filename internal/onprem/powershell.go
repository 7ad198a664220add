package onprem

// PSQuote returns s as a PowerShell single-quoted string literal, in which
// nothing is expanded (for other packages' Hyper-V scripts, e.g. the test
// gate's internal/testrun).
func PSQuote(s string) string { return psQuote(s) }
