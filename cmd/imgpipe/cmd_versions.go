package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/testrun"
	"imgpipe/internal/view"
)

func init() { register(newVersionsCmd) }

func newVersionsCmd() *cobra.Command {
	return catalogVerb("versions IMAGE", "List an image's versions, newest first, with status, channels and provenance", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			vs, err := c.Versions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if vs == nil {
				vs = []catalog.Version{}
			}
			tested, err := testrun.TestedStates(cmd.Context(), c, vs)
			if err != nil {
				return err
			}
			return view.Write(stdout, jsonOutput(), vs, view.Versions(vs, tested).String())
		})
}
