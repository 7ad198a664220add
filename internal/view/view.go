// Package view turns the answers of the engine and the catalog into what
// people read: tables (a header and rows) and text, or the value itself as
// JSON. It writes only to the io.Writer it is handed (the CLI's stdout or
// stderr), never to one kept in a package variable.
package view

import (
	"fmt"
	"imgpipe/internal/units"
	"strings"
	"text/tabwriter"
	"time"
)

// Table is a header and rows of cells.
type Table struct {
	Header []string
	Rows   [][]string
}

// String renders the table as aligned columns, one line per row.
func (t Table) String() string {
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(t.Header, "\t"))
	for _, r := range t.Rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
	return b.String()
}

// When formats a time for tables (UTC, to the minute), "-" when unset.
func When(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04Z")
}

// Dash is s, or "-" when s is empty.
func Dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Short cuts a long hash or digest to its first 19 characters and "…".
func Short(s string) string {
	if len(s) > 19 {
		return s[:19] + "…"
	}
	return s
}

// Size renders a byte count for people: 512 B, 1.5 MiB, 2.0 GiB.
func Size(n int64) string { return units.IEC(n) }
