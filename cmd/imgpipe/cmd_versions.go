package main

import (
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

func init() { register(newVersionsCmd) }

func newVersionsCmd() *cobra.Command {
	var loc string
	cmd := &cobra.Command{
		Use:   "versions IMAGE",
		Short: "List an image's versions, newest first, with status, channels and provenance",
		Long: `List the versions of one image, newest first (SemVer order), with their
status (active, deprecated, revoked, deleted), the channels pointing at them,
when and from which commit they were built, their Hyper-V generation and the
version they were built on. NOTE says why a version needs attention: it is
revoked, or its parent is revoked or behind its channel (rebuild it).`,
		Example: `  imgpipe versions web
  imgpipe versions web --output json | jq '.[] | select(.status == "active") | .version'`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			vs, err := c.Versions(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if jsonOutput() {
				if vs == nil {
					vs = []catalog.Version{}
				}
				return printJSON(vs)
			}
			rows := make([][]string, 0, len(vs))
			for _, v := range vs {
				parent := ""
				if v.Parent != nil {
					parent = v.Parent.String()
				}
				note := v.Outdated
				if v.Revocation != nil {
					note = "revoked: " + v.Revocation.Reason
				}
				built := v.BuildTime
				if built.IsZero() {
					built = v.CreatedAt
				}
				tested, err := testedColumn(cmd.Context(), c, v)
				if err != nil {
					return err
				}
				rows = append(rows, []string{v.Version, v.Status, dash(strings.Join(v.Channels, ",")), fmtWhen(built),
					dash(shortHash(v.GitCommit)), dash(v.HyperVGeneration), tested, dash(parent), note})
			}
			return printTable([]string{"VERSION", "STATUS", "CHANNELS", "BUILT", "COMMIT", "GEN", "TESTED", "PARENT", "NOTE"}, rows)
		},
	}
	addCatalogFlag(cmd, &loc)
	return cmd
}
