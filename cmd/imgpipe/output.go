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
	return draw(view.Table{Header: header, Rows: rows})
}

// draw writes what a view rendered (a view.Table, or text) to stdout.
func draw(v fmt.Stringer) error {
	_, err := fmt.Fprint(stdout, v.String())
	return err
}

// text is rendered text, for draw.
type text string

func (t text) String() string { return string(t) }

// show prints v as JSON under --output json, else what the view made of it.
func show(v any, rendered fmt.Stringer) error {
	if jsonOutput() {
		return printJSON(v)
	}
	return draw(rendered)
}

// isTerminal reports whether w is an interactive terminal (progress bars are
// drawn only there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// sizeIEC renders a byte count for people: 512 B, 1.5 MiB, 2.0 GiB.
func sizeIEC(n int64) string { return view.Size(n) }
