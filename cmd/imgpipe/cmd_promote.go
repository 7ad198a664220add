package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

func init() { register(newPromoteCmd) }

func newPromoteCmd() *cobra.Command {
	var loc, to, by string
	cmd := &cobra.Command{
		Use:   "promote IMAGE VERSION --to CHANNEL",
		Short: "Move a channel (test, prod, ...) of an image forward to a version",
		Long: `Point a channel of an image at a version, recorded with who and when.

A channel only moves forward: the version must be newer (SemVer) than the one
the channel points at. It must not be revoked, and it must already be
published where the channel needs it. By default "test" needs an on-prem
library copy and "prod" a gallery image version in state Succeeded; other
channels need nothing. Who is taken from --by, else $USER.`,
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
			p, err := c.Promote(cmd.Context(), catalog.PromoteRequest{Ref: ref, Channel: to, By: whoAmI(by)})
			if err != nil {
				return err
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
	return cmd
}
