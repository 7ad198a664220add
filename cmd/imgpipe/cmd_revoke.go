package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

func init() { register(newRevokeCmd) }

func newRevokeCmd() *cobra.Command {
	var loc, reason, by string
	var cascade bool
	cmd := &cobra.Command{
		Use:   "revoke IMAGE VERSION --reason TEXT [--cascade]",
		Short: "Mark a version revoked (optionally its descendants) and show what runs it",
		Long: `Revoke a version in the catalog: it can no longer be promoted, and every
view shows it revoked with the reason, who and when. With --cascade, every
version built on it (directly or not, in any image) is revoked too; without,
those descendants are listed and shown as outdated.

The command prints what must change outside the catalog - the gallery image
version to exclude from latest and tag, the on-prem library copies to mark -
the hosts that run a revoked version, and the channels still pointing at
one (promote a newer version to move them).`,
		Example: `  imgpipe revoke web 1.4.0 --reason "CVE-2026-1234 in openssl"
  imgpipe revoke base@2.0.0 --reason "broken cloud-init" --cascade --output json`,
		Args: refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			c, err := openCatalog(ctx, loc)
			if err != nil {
				return err
			}
			defer c.Close()
			who := whoAmI(by)
			run, err := c.StartRun(ctx, catalog.Run{Kind: catalog.RunRevoke, Image: ref.Image, Version: ref.Version, By: who})
			if err != nil {
				return err
			}
			res, err := c.Revoke(ctx, catalog.RevokeRequest{Ref: ref, Reason: reason, By: who, Cascade: cascade})
			if ferr := c.FinishRun(ctx, run.ID, err); err == nil && ferr != nil {
				err = ferr
			}
			if err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(res)
			}
			return printRevocation(res)
		},
	}
	addCatalogFlag(cmd, &loc)
	cmd.Flags().StringVar(&reason, "reason", "", "why the version is revoked (required)")
	cmd.Flags().BoolVar(&cascade, "cascade", false, "also revoke every version built on it")
	cmd.Flags().StringVar(&by, "by", "", "who revokes (default $USER)")
	return cmd
}

func printRevocation(res *catalog.RevokeResult) error {
	w := stdout
	for _, r := range res.Revoked {
		fmt.Fprintf(w, "revoked %s\n", r)
	}
	for _, r := range res.AlreadyRevoked {
		fmt.Fprintf(w, "already revoked %s\n", r)
	}
	if len(res.Actions) > 0 {
		fmt.Fprintln(w, "\nto do outside the catalog (not done by this command):")
		rows := make([][]string, 0, len(res.Actions))
		for _, a := range res.Actions {
			rows = append(rows, []string{a.Ref.String(), a.Action, string(a.Copy.Kind), a.Copy.ResourceID})
		}
		if err := printTable([]string{"VERSION", "ACTION", "COPY", "RESOURCE"}, rows); err != nil {
			return err
		}
	}
	if len(res.Hosts) > 0 {
		fmt.Fprintln(w, "\nhosts running a revoked version (rebuild or redeploy them):")
		rows := make([][]string, 0, len(res.Hosts))
		for _, h := range res.Hosts {
			rows = append(rows, []string{h.Name, h.Platform, h.Image + "@" + h.Version, fmtWhen(h.LastReport)})
		}
		if err := printTable([]string{"HOST", "PLATFORM", "RUNS", "LAST REPORT"}, rows); err != nil {
			return err
		}
	}
	for _, ch := range res.Channels {
		fmt.Fprintf(w, "\nchannel %s of %s still points at revoked %s: promote a newer version\n", ch.Name, ch.Image, ch.Version)
	}
	if len(res.Descendants) > 0 {
		fmt.Fprintln(w, "\nbuilt on it, not revoked (now outdated; --cascade revokes them):")
		for _, d := range res.Descendants {
			fmt.Fprintf(w, "  %s\n", d)
		}
	}
	return nil
}
