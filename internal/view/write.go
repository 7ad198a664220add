package view

import (
	"encoding/json"
	"fmt"
	"io"
)

// JSON writes v to w as indented JSON (what --output json prints).
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// Write writes v as JSON when asJSON, else text.
func Write(w io.Writer, asJSON bool, v any, text string) error {
	if asJSON {
		return JSON(w, v)
	}
	_, err := io.WriteString(w, text)
	return err
}

// Fprint writes the table's text to w.
func (t Table) Fprint(w io.Writer) error {
	_, err := fmt.Fprint(w, t.String())
	return err
}
