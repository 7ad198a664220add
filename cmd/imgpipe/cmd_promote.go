package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/attest"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/promote"
)

func init() { register(newPromoteCmd) }

// stagerFor is what includes a version promoted to prod in the gallery's
// latest: the Azure fleet of the file's subscriptions. Tests replace it.
var stagerFor = func(f *config.File) promote.Stager {
	return pipeline.NewFleet(connectAzure, f, os.Getenv("AZURE_SUBSCRIPTION_ID"))
}

func newPromoteCmd() *cobra.Command {
	var loc, to, by, signKey, file string
	cmd := &cobra.Command{
		Use:   "promote IMAGE VERSION --to CHANNEL [-f PIPELINE]",
		Short: "Move a channel (test, prod, ...) of an image forward to a version",
		Args:  refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			if to == "" {
				return fmt.Errorf("say which channel with --to (e.g. --to prod)")
			}
			req := promote.Request{Ref: ref, Channel: to, By: whoAmI(by)}
			if file != "" {
				if req.File, err = config.Load(file); err != nil {
					return err
				}
			}
			if signKey != "" {
				if req.Signer, err = attest.LoadSigner(signKey); err != nil {
					return err
				}
			}
			c, err := openCatalogWith(cmd.Context(), catalogChoice{flag: loc, file: req.File})
			if err != nil {
				return err
			}
			defer c.Close()
			req.Stager = stagerFor(req.File)
			p, err := promote.Promote(cmd.Context(), c, req)
			if p.Channel == "" {
				return err
			}
			if !p.NoOp {
				deliverQueued(cmd.Context(), c) // the catalog queued the promotion's event with it
			}
			if jsonOutput() {
				return errors.Join(printJSON(p), err)
			}
			return errors.Join(printPromotion(p), err)
		},
	}
	addCatalogFlag(cmd, &loc)
	cmd.Flags().StringVar(&to, "to", "", "channel to move (e.g. test, prod)")
	cmd.Flags().StringVar(&by, "by", "", "who promotes (default $USER)")
	cmd.Flags().StringVarP(&file, "file", "f", "", "pipeline file: its channel blocks replace the catalog's requirements, its azure blocks name the subscriptions")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign a promotion attestation with this private key (PEM)")
	return cmd
}

func printPromotion(p promote.Result) error {
	var err error
	switch {
	case p.NoOp:
		_, err = fmt.Fprintf(stdout, "%s of %s already points at %s: nothing to do\n", p.Channel, p.Image, p.To)
	case p.From == "":
		_, err = fmt.Fprintf(stdout, "%s of %s: now %s (by %s at %s)\n", p.Channel, p.Image, p.To, p.By, fmtWhen(p.At))
	default:
		_, err = fmt.Fprintf(stdout, "%s of %s: %s -> %s (by %s at %s)\n", p.Channel, p.Image, p.From, p.To, p.By, fmtWhen(p.At))
	}
	for _, id := range p.Included {
		fmt.Fprintf(stdout, "  in latest: %s\n", id)
	}
	for _, l := range p.Left {
		fmt.Fprintf(stdout, "  STILL EXCLUDED from latest: %s\n", l)
	}
	return err
}
