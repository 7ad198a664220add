package view

import (
	"io"

	"imgpipe/internal/disk"
)

// Inspection draws disk inspect's answer: a PROPERTY/VALUE table and the
// Azure findings.
func Inspection(w io.Writer, asJSON bool, r *disk.Inspection) error {
	return Write(w, asJSON, r, Table{Header: []string{"PROPERTY", "VALUE"}, Rows: r.Rows()}.String()+r.Azure.FindingsText())
}

// Readiness draws disk check --azure's verdict on path.
func Readiness(w io.Writer, asJSON bool, path string, r *disk.Readiness) error {
	verdict := " is NOT ready for Azure\n"
	if r.Ready {
		verdict = " is ready for Azure\n"
	}
	return Write(w, asJSON, r, path+verdict+r.FindingsText())
}
