package view

// imgpipe onprem: a disk added to the library, the library's listing.

import (
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/onprem"
	"imgpipe/internal/pipeline"
)

// LibraryAdd draws a library add: the library's answer as JSON, else what
// it did, the channels pointed at it, and whether the catalog recorded it.
func LibraryAdd(w io.Writer, asJSON bool, a *pipeline.LibraryAdd, channels []string) error {
	s := a.Result.Text(channels)
	switch {
	case a.NotRecorded != nil:
		s += fmt.Sprintf("  not recorded in the catalog %s: %v\n", a.Catalog, a.NotRecorded)
	case a.Catalog != "":
		s += "  recorded in catalog " + a.Catalog + "\n"
	}
	return Write(w, asJSON, a.Result, s)
}

// LibraryImages draws the library's images: a row per version (an empty
// list, not null, as JSON).
func LibraryImages(w io.Writer, asJSON bool, infos []onprem.ImageInfo) error {
	if asJSON {
		return JSON(w, append([]onprem.ImageInfo{}, infos...))
	}
	return Table{Header: onprem.ListHeader, Rows: onprem.ListRows(infos)}.Fprint(w)
}

// LibraryChannels is the text of channels pointed at image's version.
func LibraryChannels(image, version string, channels []string) string {
	var b strings.Builder
	for _, ch := range channels {
		fmt.Fprintf(&b, "%s channel %s -> %s\n", image, ch, version)
	}
	return b.String()
}
