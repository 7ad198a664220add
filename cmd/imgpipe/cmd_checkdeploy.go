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
		Long: `check-deploy answers, before you try: can a VM in subscription S, region L,
be created from this image, and if not, what to do.

For a gallery image version: is it provisioned, is L one of its regions with
replication completed (otherwise: imgpipe replicate VERSION --add-region L), and,
from another subscription, does the identity deploying there have a role on
the gallery (a share block in the pipeline file, or --principal)?

For a managed image: it is usable only in its own region and subscription.

VERSION is a full resource id (of a version or a managed image), or with
-f pipeline.hcl a bare version such as 1.2.3. When the catalog records the
version and trusts a signing key (imgpipe key trust), check-deploy also
verifies its signed provenance (imgpipe verify) and says no when it does not
verify. Exit status 2 when the answer is no.`,
		Example: `  imgpipe check-deploy 1.4.2 -f pipeline.hcl --subscription 2222... --location northeurope
  imgpipe check-deploy /subscriptions/.../images/web-1.4.2 --subscription 1111... --location westeurope`,
		Args: cobra.ExactArgs(1),
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
