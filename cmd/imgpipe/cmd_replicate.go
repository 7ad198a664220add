package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newReplicateCmd) }

func newReplicateCmd() *cobra.Command {
	var (
		f azureFlags
		r pipeline.Replication
	)
	cmd := &cobra.Command{
		Use:   "replicate VERSION --add-region REGION",
		Short: "Add target regions to an existing gallery image version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			res, err := pipeline.Replicate(cmd.Context(), f.on(cmd, args[0], true), r)
			return view.Replicated(stdout, cmd.ErrOrStderr(), jsonOutput(), res, err)
		},
	}
	f.add(cmd, false)
	fl := cmd.Flags()
	fl.StringArrayVar(&r.Add, "add-region", nil, "region to add (repeatable)")
	fl.StringArrayVar(&r.Remove, "remove-region", nil, "region to remove (repeatable): the one way imgpipe drops a replica; lifts safetyProfile.allowDeletionOfReplicatedLocations for the change and sets it back")
	fl.Int32Var(&r.Replicas, "replicas", 1, "replicas in each added region")
	fl.StringVar(&r.StorageAccountType, "storage-account-type", "Standard_LRS", "Standard_LRS, Standard_ZRS or Premium_LRS")
	durationVar(fl, &r.Timeout, "replication-timeout", 0, "how long to wait for replication (default: the file's, or 3h)")
	fl.String("catalog", "", "catalog whose region copies of the version are updated (default: the file's catalog block, $"+catalogEnv+", else the per-user one if it exists)")
	return cmd
}
