package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

func init() { register(newPlanCmd) }

func newPlanCmd() *cobra.Command {
	var (
		f        azureFlags
		detailed bool
	)
	cmd := &cobra.Command{
		Use:   "plan -f pipeline.hcl",
		Short: "Show what publish would change in Azure (changes nothing)",
		Long: `plan reads the pipeline file, inspects the source disk (its Hyper-V generation
and a digest of its bytes), reads the current state in Azure, and prints the
steps publish would take, as a diff:

  + create / upload / share     something new
  ~ update / replicate          an existing version changes (new regions...)
  - delete                      e.g. a version left Failed, made again
  > wait                        a replication still running: publish resumes watching
  = keep                        already as the file says

Refusals are decided here, before anything is uploaded: a Gen2 (UEFI) disk for
a V1 definition, a definition whose immutable properties differ from the
file, a version that already exists with other content. Location differences
between resource group, gallery, definition and version are warnings only.`,
		Example: `  imgpipe plan -f pipeline.hcl
  imgpipe plan -f pipeline.hcl --output json
  imgpipe plan -f pipeline.hcl --detailed-exitcode   # exit 2 when there are changes`,
		Args: cobra.NoArgs,
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
			plan, err := w.engine(nil).Plan(ctx, req)
			if err != nil {
				return err
			}
			if jsonOutput() {
				err = printJSON(planJSON(plan))
			} else {
				_, err = fmt.Fprint(stdout, planText(plan))
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
	return cmd
}
