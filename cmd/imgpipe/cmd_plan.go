package main

import (
	"github.com/spf13/cobra"

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
			plan, err := pipeline.PlanFile(cmd.Context(), f.file, pipeline.Options{Target: f.target, Source: f.source}, out)
			if err == nil {
				err = view.Plan(stdout, cmd.ErrOrStderr(), jsonOutput(), plan, out)
			}
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
