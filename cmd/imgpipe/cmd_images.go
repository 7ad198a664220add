package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/view"
)

func init() { register(newImagesCmd) }

func newImagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images in the catalog with their newest version and channels",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				imgs, err := c.Images(cmd.Context())
				if err != nil {
					return err
				}
				return view.Write(stdout, jsonOutput(), imgs, view.Images(imgs).String())
			})
		},
	}
	addCatalogFlag(cmd, nil)
	return cmd
}
