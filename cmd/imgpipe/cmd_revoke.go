package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
	"imgpipe/internal/promote"
	"imgpipe/internal/view"
)

func init() { register(newRevokeCmd) }

func newRevokeCmd() *cobra.Command {
	var by string
	var req catalog.RevokeRequest
	cmd := &cobra.Command{
		Use:   "revoke IMAGE VERSION --reason TEXT [--cascade]",
		Short: "Mark a version revoked (optionally its descendants) and show what runs it",
		Args:  refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			req.Ref, req.By = ref, whoAmI(by)
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				ctx := cmd.Context()
				res, err := promote.Revoke(ctx, c, req, revokerFor, func(r *catalog.RevokeResult) {
					if err := emitEvent(ctx, c, events.TypeRevocation, ref.String(), r); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
					}
				})
				if err != nil {
					return err
				}
				return view.Revocation(stdout, cmd.ErrOrStderr(), jsonOutput(), res)
			})
		},
	}
	addCatalogFlag(cmd, nil)
	cmd.Flags().StringVar(&req.Reason, "reason", "", "why the version is revoked (required)")
	cmd.Flags().BoolVar(&req.Cascade, "cascade", false, "also revoke every version built on it")
	cmd.Flags().StringVar(&by, "by", "", "who revokes (default $USER)")
	return cmd
}
