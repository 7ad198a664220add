package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newPlanCmd) }

func newPlanCmd() *cobra.Command {
	var (
		f        azureFlags
		detailed bool
		out      string
	)
	cmd := &cobra.Command{
		Use:   "plan -f pipeline.hcl",
		Short: "Show what publish would change in Azure (changes nothing)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			w, err := openWiring(ctx, f, 0)
			if err != nil {
				return err
			}
			req, err := w.request(ctx, f.source, "")
			if err != nil {
				return err
			}
			var plan *pipeline.Plan
			err = withCatalogOf(cmd, w.file, ifPresent, func(cat *catalog.Catalog) (err error) {
				plan, err = w.engine(cat).Plan(ctx, req)
				return err
			})
			if err != nil {
				return err
			}
			if out != "" {
				if err := pipeline.SavePlanFile(plan, f.file, out, time.Now()); err != nil {
					return err
				}
				if !jsonOutput() {
					fmt.Fprintf(cmd.ErrOrStderr(), "saved the plan to %s: apply exactly it with imgpipe publish --plan %s\n", out, out)
				}
			}
			err = draw(view.PlanJSON(plan), view.PlanText(plan))
			if err == nil && detailed && plan.HasChanges() {
				return negative(nil)
			}
			return err
		},
	}
	f.add(cmd, true)
	cmd.Flags().StringVar(&f.source, "source", "", "disk image to plan for instead of the image block's source")
	cmd.Flags().BoolVar(&detailed, "detailed-exitcode", false, "exit 2 when the plan has changes, 0 when none")
	cmd.Flags().StringVar(&out, "out", "", "also save the plan to this file (JSON) for imgpipe publish --plan")
	return cmd
}
