package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/view"
)

func init() { register(newImagesCmd) }

func newImagesCmd() *cobra.Command {
	return catalogVerb("images", "List the images in the catalog with their newest version and channels", cobra.NoArgs,
		func(cmd *cobra.Command, _ []string, c *catalog.Catalog) error {
			imgs, err := c.Images(cmd.Context())
			if err != nil {
				return err
			}
			return view.Write(stdout, jsonOutput(), imgs, view.Images(imgs).String())
		})
}

// firstArg is the optional argument of a command, "" when not given.
func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
