package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"

	"imgpipe/internal/view"
)

// printJSON writes v as indented JSON to stdout.
func printJSON(v any) error {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable writes rows under a header as aligned columns.
func printTable(header []string, rows [][]string) error {
	return printText(view.Table{Header: header, Rows: rows}.String())
}

// printText writes what a view rendered to stdout.
func printText(s string) error {
	_, err := fmt.Fprint(stdout, s)
	return err
}

// isTerminal reports whether w is an interactive terminal (progress bars are
// drawn only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// sizeIEC renders a byte count for people: 512 B, 1.5 MiB, 2.0 GiB.
func sizeIEC(n int64) string { return view.Size(n) }
