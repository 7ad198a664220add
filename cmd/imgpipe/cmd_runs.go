package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/view"
)

func init() { register(newRunsCmd) }

func newRunsCmd() *cobra.Command {
	var kind, status string
	var limit int
	var id int64
	cmd := &cobra.Command{
		Use:   "runs [IMAGE]",
		Short: "List recorded runs (plan, publish, destroy, gc, build, revoke) and their steps",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				if id > 0 {
					r, err := c.Run(cmd.Context(), id)
					if err != nil {
						return err
					}
					return draw(r, view.Run(r))
				}
				f := catalog.RunFilter{Kind: kind, Status: status, Limit: limit}
				if len(args) == 1 {
					f.Image = args[0]
				}
				runs, err := c.Runs(cmd.Context(), f)
				if err != nil {
					return err
				}
				if runs == nil {
					runs = []catalog.Run{}
				}
				return draw(runs, view.Runs(runs).String())
			})
		},
	}
	addCatalogFlag(cmd, nil)
	cmd.Flags().StringVar(&kind, "kind", "", "only runs of this kind (plan, publish, destroy, gc, build, revoke)")
	cmd.Flags().StringVar(&status, "status", "", "only runs in this state (running, succeeded, failed, abandoned: its process went away holding the lock)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs")
	cmd.Flags().Int64Var(&id, "id", 0, "show this run with its steps")
	return cmd
}
