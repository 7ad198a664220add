package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/buildinfo"
	"imgpipe/internal/view"
)

func init() { register(newVersionCmd) }

func newVersionCmd() *cobra.Command {
	return &cobra.Command{Use: "version", Short: "Print the imgpipe version and the revision it was built from",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
			return view.Version(stdout, jsonOutput(), buildinfo.Read())
		}}
}

// toolVersion names this imgpipe build in documents it writes.
func toolVersion() string { return buildinfo.Read().Tool() }
