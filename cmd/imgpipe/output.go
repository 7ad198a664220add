package main

import (
	"io"
	"os"

	"imgpipe/internal/view"
)

// stdout is where commands write results; tests replace it.
var stdout io.Writer = os.Stdout

// jsonOutput reports whether the user asked for machine-readable output.
func jsonOutput() bool { return globals.output == "json" }

// printJSON, printTable and printText write to stdout through
// internal/view (the verbs not yet drawing with view.Write themselves).
func printJSON(v any) error { return view.JSON(stdout, v) }
func printTable(header []string, rows [][]string) error {
	return printText(view.Table{Header: header, Rows: rows}.String())
}
func printText(s string) error    { return view.Write(stdout, false, nil, s) }
func isTerminal(w io.Writer) bool { return view.IsTerminal(w) }
