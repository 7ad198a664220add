package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/view"
)

func init() { register(newRunsCmd) }

func newRunsCmd() *cobra.Command {
	var f catalog.RunFilter
	var id int64
	cmd := catalogVerb("runs [IMAGE]", "List recorded runs (plan, publish, destroy, gc, build, revoke) and their steps", cobra.MaximumNArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			if id > 0 {
				r, err := c.Run(cmd.Context(), id)
				if err != nil {
					return err
				}
				return view.Write(stdout, jsonOutput(), r, view.Run(r))
			}
			f.Image = firstArg(args)
			runs, err := c.Runs(cmd.Context(), f)
			if err != nil {
				return err
			}
			if runs == nil {
				runs = []catalog.Run{}
			}
			return view.Write(stdout, jsonOutput(), runs, view.Runs(runs).String())
		})
	cmd.Flags().StringVar(&f.Kind, "kind", "", "only runs of this kind (plan, publish, destroy, gc, build, revoke)")
	cmd.Flags().StringVar(&f.Status, "status", "", "only runs in this state (running, succeeded, failed, abandoned: its process went away holding the lock)")
	cmd.Flags().IntVar(&f.Limit, "limit", 50, "at most this many runs")
	cmd.Flags().Int64Var(&id, "id", 0, "show this run with its steps")
	return cmd
}
