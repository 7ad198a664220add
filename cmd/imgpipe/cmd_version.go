package main

import (
	"cmp"
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/buildinfo"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the imgpipe version and the revision it was built from",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			in := buildinfo.Read()
			in.Version = cmp.Or(in.Version, "dev")
			return draw(in, fmt.Sprintf("imgpipe %s (revision %s, %s)\n", in.Version, in.Revision, in.Go))
		},
	}
}

// toolVersion names this imgpipe build in documents it writes.
func toolVersion() string { return buildinfo.Read().Tool() }
