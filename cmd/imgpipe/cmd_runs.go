package main

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

func init() { register(newRunsCmd) }

func newRunsCmd() *cobra.Command {
	var loc, kind, status string
	var limit int
	var id int64
	cmd := &cobra.Command{
		Use:   "runs [IMAGE]",
		Short: "List recorded runs (plan, publish, destroy, gc, build, revoke) and their steps",
		Long: `List the runs recorded in the catalog, newest first: what ran, on which image
and version, who started it, how it ended. --id shows one run with every
step, its outcome and the resources it made (what a resumed publish relies on).`,
		Example: `  imgpipe runs
  imgpipe runs web --kind publish --limit 5
  imgpipe runs --id 42 --output json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			if id > 0 {
				r, err := c.Run(cmd.Context(), id)
				if err != nil {
					return err
				}
				if jsonOutput() {
					return printJSON(r)
				}
				return printRun(r)
			}
			f := catalog.RunFilter{Kind: kind, Status: status, Limit: limit}
			if len(args) == 1 {
				f.Image = args[0]
			}
			runs, err := c.Runs(cmd.Context(), f)
			if err != nil {
				return err
			}
			if jsonOutput() {
				if runs == nil {
					runs = []catalog.Run{}
				}
				return printJSON(runs)
			}
			rows := make([][]string, 0, len(runs))
			for _, r := range runs {
				rows = append(rows, []string{strconv.FormatInt(r.ID, 10), r.Kind, dash(r.Image), dash(r.Version), r.Status,
					dash(r.By), fmtWhen(r.StartedAt), runDuration(r), strconv.Itoa(len(r.Steps)), r.Error})
			}
			return printTable([]string{"ID", "KIND", "IMAGE", "VERSION", "STATUS", "BY", "STARTED", "TOOK", "STEPS", "ERROR"}, rows)
		},
	}
	addCatalogFlag(cmd, &loc)
	cmd.Flags().StringVar(&kind, "kind", "", "only runs of this kind (plan, publish, destroy, gc, build, revoke)")
	cmd.Flags().StringVar(&status, "status", "", "only runs in this state (running, succeeded, failed, abandoned: its process went away holding the lock)")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many runs")
	cmd.Flags().Int64Var(&id, "id", 0, "show this run with its steps")
	return cmd
}

func runDuration(r catalog.Run) string {
	if r.EndedAt.IsZero() {
		return "-"
	}
	return r.EndedAt.Sub(r.StartedAt).Round(100_000_000).String()
}

func printRun(r catalog.Run) error {
	fmt.Fprintf(stdout, "run %d: %s %s %s  %s\n", r.ID, r.Kind, dash(r.Image), r.Version, r.Status)
	fmt.Fprintf(stdout, "  by %s, started %s, took %s\n", dash(r.By), fmtWhen(r.StartedAt), runDuration(r))
	if r.Error != "" {
		fmt.Fprintf(stdout, "  error: %s\n", r.Error)
	}
	rows := make([][]string, 0, len(r.Steps))
	for _, s := range r.Steps {
		rows = append(rows, []string{strconv.Itoa(s.Seq), s.Name, s.Status, s.Detail, strings.Join(s.ResourceIDs, " ")})
	}
	if len(rows) == 0 {
		return nil
	}
	return printTable([]string{"STEP", "NAME", "STATUS", "DETAIL", "RESOURCES"}, rows)
}
