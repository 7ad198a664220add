package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/supplychain"
)

func init() { register(newPromoteCmd) }

func newPromoteCmd() *cobra.Command {
	var loc, to, by, signKey string
	cmd := &cobra.Command{
		Use:   "promote IMAGE VERSION --to CHANNEL",
		Short: "Move a channel (test, prod, ...) of an image forward to a version",
		Long: `Point a channel of an image at a version, recorded with who and when.

A channel only moves forward: the version must be newer (SemVer) than the one
the channel points at. It must not be revoked, and it must already be
published where the channel needs it. By default "test" needs an on-prem
library copy and "prod" a gallery image version in state Succeeded; other
channels need nothing. Once the catalog trusts a signing key (imgpipe key
trust), "prod" also needs a provenance signed by it that verifies against
every copy (imgpipe verify). Who is taken from --by, else $USER.`,
		Example: `  imgpipe promote web 1.4.0 --to test
  imgpipe promote web@1.4.0 --to prod --by release-bot`,
		Args: refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			if to == "" {
				return fmt.Errorf("say which channel with --to (e.g. --to prod)")
			}
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			if _, err := supplychain.CheckPromotion(cmd.Context(), c, ref, to); err != nil {
				return err
			}
			var signer attest.Signer
			if signKey != "" {
				if signer, err = attest.LoadSigner(signKey); err != nil {
					return err
				}
			}
			p, err := c.Promote(cmd.Context(), catalog.PromoteRequest{Ref: ref, Channel: to, By: whoAmI(by)})
			if err != nil {
				return err
			}
			if !p.NoOp {
				deliverQueued(cmd.Context(), c) // the catalog queued the promotion's event with it
			}
			if signer != nil && !p.NoOp {
				if _, err := supplychain.SignPromotion(cmd.Context(), c, p, signer); err != nil {
					return fmt.Errorf("%s promoted, but its promotion attestation was not signed: %w", ref, err)
				}
			}
			if jsonOutput() {
				return printJSON(p)
			}
			switch {
			case p.NoOp:
				_, err = fmt.Fprintf(stdout, "%s of %s already points at %s: nothing to do\n", p.Channel, p.Image, p.To)
			case p.From == "":
				_, err = fmt.Fprintf(stdout, "%s of %s: now %s (by %s at %s)\n", p.Channel, p.Image, p.To, p.By, fmtWhen(p.At))
			default:
				_, err = fmt.Fprintf(stdout, "%s of %s: %s -> %s (by %s at %s)\n", p.Channel, p.Image, p.From, p.To, p.By, fmtWhen(p.At))
			}
			return err
		},
	}
	addCatalogFlag(cmd, &loc)
	cmd.Flags().StringVar(&to, "to", "", "channel to move (e.g. test, prod)")
	cmd.Flags().StringVar(&by, "by", "", "who promotes (default $USER)")
	cmd.Flags().StringVar(&signKey, "sign-key", "", "sign a promotion attestation with this private key (PEM)")
	return cmd
}
