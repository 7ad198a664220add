package main

import (
	"errors"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/promote"
	"imgpipe/internal/view"
)

func init() { register(newPromoteCmd) }

// stagerFor is what includes a version promoted to prod in the gallery's
// latest: the Azure fleet of the file's subscriptions. Tests replace it.
var stagerFor = func(f *config.File) promote.Stager {
	return pipeline.EnvFleet(f)
}

func newPromoteCmd() *cobra.Command {
	var to, by, signKey, file string
	cmd := &cobra.Command{
		Use:   "promote IMAGE VERSION --to CHANNEL [-f PIPELINE]",
		Short: "Move a channel (test, prod, ...) of an image forward to a version",
		Args:  refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			req, err := promote.NewRequest(ref, to, whoAmI(by), file, signKey)
			if err != nil {
				return err
			}
			req.Stager = stagerFor(req.File)
			return withCatalogOf(cmd, req.File, required, func(c *catalog.Catalog) error {
				p, err := promote.Promote(cmd.Context(), c, req)
				if p.Channel == "" {
					return err
				}
				if !p.NoOp {
					deliverQueued(cmd.Context(), c) // the catalog queued the promotion's event with it
				}
				return errors.Join(view.Promotion(stdout, jsonOutput(), p), err)
			})
		},
	}
	addCatalogFlag(cmd, nil)
	cmd.Flags().StringVar(&to, "to", "", "channel to move (e.g. test, prod)")
	cmd.Flags().StringVar(&by, "by", "", "who promotes (default $USER)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "pipeline file: its channel blocks replace the catalog's requirements, its azure blocks name the subscriptions")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign a promotion attestation with this private key (PEM)")
	return cmd
}
