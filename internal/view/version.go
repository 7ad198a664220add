package view

import (
	"cmp"
	"fmt"
	"io"

	"imgpipe/internal/buildinfo"
)

// Version draws imgpipe version: the version ("dev" when unknown), the
// revision and the Go release it was built with.
func Version(w io.Writer, asJSON bool, in buildinfo.Info) error {
	in.Version = cmp.Or(in.Version, "dev")
	return Write(w, asJSON, in, fmt.Sprintf("imgpipe %s (revision %s, %s)\n", in.Version, in.Revision, in.Go))
}
