package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
)

func init() { register(newCheckDeployCmd) }

func newCheckDeployCmd() *cobra.Command {
	var (
		f                        azureFlags
		sub, location, principal string
		catalogLoc               string
	)
	cmd := &cobra.Command{
		Use:   "check-deploy VERSION --subscription S --location L",
		Short: "Say whether a VM can be deployed from a version (or managed image) in a subscription and region",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if sub == "" || location == "" {
				return errors.New("--subscription and --location are required")
			}
			var id azure.ResourceID
			var err error
			if strings.HasPrefix(args[0], "/") {
				id, err = azure.ParseResourceID(args[0])
			} else {
				id, err = resolveVersionArg(f, args[0])
			}
			if err != nil {
				return err
			}
			s, err := openAzure(f, id.Subscription)
			if err != nil {
				return err
			}
			dc, err := s.pub.CheckDeploy(cmd.Context(), id, sub, location, principal)
			if err != nil {
				return err
			}
			prov, err := provenanceOf(cmd.Context(), catalogLoc, id.String())
			if err != nil {
				return err
			}
			if jsonOutput() {
				err = printJSON(struct {
					*azure.DeployCheck
					Provenance *provenanceCheck `json:"provenance,omitempty"`
				}{dc, prov})
			} else {
				_, err = fmt.Fprint(stdout, dc.Text()+prov.text())
			}
			if err == nil && (!dc.OK || !prov.ok()) {
				return negative(nil)
			}
			return err
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&sub, "subscription", "", "subscription the VM will be in")
	cmd.Flags().StringVar(&location, "location", "", "region the VM will be in")
	addCatalogFlag(cmd, &catalogLoc)
	cmd.Flags().StringVar(&principal, "principal", "", "object id of the identity that will deploy (default: the share blocks imgpipe recorded)")
	return cmd
}
