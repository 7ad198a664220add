package main

import (
	"fmt"
	"os"

	"imgpipe/internal/disk"
)

// formatRows are the inspect rows that only some formats have: qcow2's
// version and compression, and the doubts (warnings) about a raw file.
func formatRows(info disk.Info) [][]string {
	var rows [][]string
	if info.Format == disk.FormatQcow2 {
		v := fmt.Sprintf("%d, compressed clusters: %s", info.FormatVersion, info.Compression)
		if info.ExtendedL2 {
			v += ", extended L2 (subclusters)"
		}
		rows = append(rows, []string{"qcow2 version", v})
	}
	for _, w := range info.Warnings {
		rows = append(rows, []string{"warning", w})
	}
	return rows
}

// warnDisk shows an opened source's warnings on stderr (results stay on
// stdout, so --output json is unaffected).
func warnDisk(img disk.Image) {
	if d, ok := img.(disk.Describer); ok {
		for _, w := range d.Info().Warnings {
			fmt.Fprintln(os.Stderr, "imgpipe: warning:", w)
		}
	}
}
