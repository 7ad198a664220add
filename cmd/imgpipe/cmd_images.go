package main

import (
	"sort"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

func init() { register(newImagesCmd) }

func newImagesCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the images in the catalog with their newest version and channels",
		Long: `List every image the catalog knows: how many versions it has (deleted ones
not counted), the newest usable version, and which version each channel
(test, prod, ...) points at.`,
		Example: `  imgpipe images
  imgpipe images --catalog postgres://imgpipe@db.internal/imgpipe --output json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				imgs, err := c.Images(cmd.Context())
				if err != nil {
					return err
				}
				if jsonOutput() {
					return printJSON(imgs)
				}
				rows := make([][]string, 0, len(imgs))
				for _, im := range imgs {
					var chs []string
					for name, v := range im.Channels {
						chs = append(chs, name+"="+v)
					}
					sort.Strings(chs)
					rows = append(rows, []string{im.Name, strconv.Itoa(im.Versions), dash(im.Latest), dash(strings.Join(chs, " "))})
				}
				return printTable([]string{"IMAGE", "VERSIONS", "NEWEST", "CHANNELS"}, rows)
			})
		},
	}
	addCatalogFlag(cmd, nil)
	return cmd
}
