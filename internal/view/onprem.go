package view

// imgpipe onprem: a disk added to the library, the library's listing.

import (
	"fmt"
	"io"
	"slices"
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

// LibraryImages draws the library's images: a row per version with the
// pointers (latest, channels) at it and whether it is revoked (an empty
// list, not null, as JSON).
func LibraryImages(w io.Writer, asJSON bool, infos []onprem.ImageInfo) error {
	if asJSON {
		return JSON(w, append([]onprem.ImageInfo{}, infos...))
	}
	return libraryTable(infos).Fprint(w)
}

func libraryTable(infos []onprem.ImageInfo) Table {
	t := Table{Header: []string{"IMAGE", "VERSION", "GEN", "OS", "FORMAT", "SIZE", "POINTERS", "CREATED", "SHA256", "STATE"}}
	for _, im := range infos {
		for _, v := range im.Versions {
			var marks []string
			if im.Latest == v.Version {
				marks = append(marks, "latest")
			}
			for ch, ver := range im.Channels {
				if ver == v.Version {
					marks = append(marks, ch)
				}
			}
			state := "ok"
			if v.Revoked {
				state = "revoked: " + v.RevokedReason
			}
			t.Rows = append(t.Rows, []string{im.Image, v.Version, v.Generation, v.OS, v.Format, Size(v.VirtualSize),
				strings.Join(slices.Sorted(slices.Values(marks)), ","), v.Created.Format("2006-01-02 15:04"), v.SHA256[:min(12, len(v.SHA256))], state})
		}
	}
	return t
}

// LibraryChannels is the text of channels pointed at image's version.
func LibraryChannels(image, version string, channels []string) string {
	var b strings.Builder
	for _, ch := range channels {
		fmt.Fprintf(&b, "%s channel %s -> %s\n", image, ch, version)
	}
	return b.String()
}
