package view

// The supply-chain verbs: trusted keys, the packages two versions differ in.

import (
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/catalog"
	"imgpipe/internal/sbom"
)

// TrustedKeys draws the keys the catalog trusts.
func TrustedKeys(w io.Writer, asJSON bool, ks []catalog.TrustedKey) error {
	if asJSON {
		return JSON(w, ks)
	}
	t := Table{Header: []string{"KEY", "ADDED BY", "ADDED"}}
	for _, k := range ks {
		t.Rows = append(t.Rows, []string{k.KeyID, Dash(k.AddedBy), When(k.AddedAt)})
	}
	return t.Fprint(w)
}

// SBOMDiff draws the packages added, removed and upgraded from version
// from to version to of image.
func SBOMDiff(w io.Writer, asJSON bool, d sbom.Diff, image, from, to string) error {
	switch {
	case asJSON:
		return JSON(w, d)
	case d.Empty():
		_, err := fmt.Fprintf(w, "%s %s and %s have the same packages\n", image, from, to)
		return err
	}
	return sbomDiffTable(d, from, to).Fprint(w)
}

// sbomDiffTable is d as a table: CHANGE, PACKAGE, then the two versions'
// columns.
func sbomDiffTable(d sbom.Diff, from, to string) Table {
	t := Table{Header: []string{"CHANGE", "PACKAGE", strings.ToUpper(from), strings.ToUpper(to)}}
	for _, p := range d.Added {
		t.Rows = append(t.Rows, []string{"added", p.Name, "", p.Version})
	}
	for _, p := range d.Removed {
		t.Rows = append(t.Rows, []string{"removed", p.Name, p.Version, ""})
	}
	for _, ch := range d.Changed {
		t.Rows = append(t.Rows, []string{"upgraded", ch.Name, ch.From, ch.To})
	}
	return t
}
