package main

import (
	"errors"
	"io"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newDestroyCmd) }

func newDestroyCmd() *cobra.Command {
	var (
		f          azureFlags
		scope      string
		yes, force bool
	)
	cmd := &cobra.Command{
		Use:   "destroy [ID | VERSION]",
		Short: "Remove a gallery image version, a definition or a whole gallery, in dependency order",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := pipeline.Destroy(cmd.Context(), f.on(cmd, append(args, "")[0], true), scope, force, func(dp *azure.DestroyPlan) (bool, error) {
				if jsonOutput() {
					return yes, nil // without --yes, the plan is the answer
				}
				io.WriteString(cmd.ErrOrStderr(), dp.Text())
				ok, err := view.Approve(os.Stdin, cmd.ErrOrStderr(), yes || !dp.HasChanges(), "Delete these resources?")
				if err == nil && !ok {
					err = errors.New("nothing deleted")
				}
				return ok, err
			})
			if err != nil {
				return view.Joined(err)
			}
			return view.Destroyed(stdout, jsonOutput(), d)
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&scope, "scope", "", "with -f and no VERSION: definition or gallery")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.Flags().BoolVar(&force, "force", false, "also delete versions still used by VMs or scale sets")
	cmd.Flags().String("catalog", "", "record the run, and mark the deleted copies, in this catalog (default: the file's catalog block, then $"+catalogEnv+", then the per-user catalog if it exists)")
	return cmd
}
