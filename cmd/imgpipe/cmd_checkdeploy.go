package main

import (
	"github.com/spf13/cobra"

	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newCheckDeployCmd) }

func newCheckDeployCmd() *cobra.Command {
	var (
		f                        azureFlags
		sub, location, principal string
	)
	cmd := &cobra.Command{
		Use:   "check-deploy VERSION --subscription S --location L",
		Short: "Say whether a VM can be deployed from a version (or managed image) in a subscription and region",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := pipeline.CheckDeploy(cmd.Context(), f.on(cmd, args[0], false), sub, location, principal)
			if err == nil {
				err = view.Deployable(stdout, jsonOutput(), d)
			}
			if err == nil && !d.Yes() {
				return negative(nil)
			}
			return err
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&sub, "subscription", "", "subscription the VM will be in")
	cmd.Flags().StringVar(&location, "location", "", "region the VM will be in")
	addCatalogFlag(cmd, nil)
	cmd.Flags().StringVar(&principal, "principal", "", "object id of the identity that will deploy (default: the share blocks imgpipe recorded)")
	return cmd
}
