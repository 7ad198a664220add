package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
	"imgpipe/internal/promote"
)

func init() { register(newRevokeCmd) }

func newRevokeCmd() *cobra.Command {
	var loc, reason, by string
	var cascade bool
	cmd := &cobra.Command{
		Use:   "revoke IMAGE VERSION --reason TEXT [--cascade]",
		Short: "Mark a version revoked (optionally its descendants) and show what runs it",
		Args:  refArgs,
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
			res, err := promote.Revoke(ctx, c, catalog.RevokeRequest{Ref: ref, Reason: reason, By: whoAmI(by), Cascade: cascade}, revokerFor,
				func(r *catalog.RevokeResult) {
					if err := emitEvent(ctx, c, events.TypeRevocation, ref.String(), r); err != nil {
						fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
					}
				})
			if err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(res)
			}
			for _, a := range res.Done {
				fmt.Fprintf(stdout, "done: %s %s %s\n", a.Action, a.Copy.Kind, a.Copy.ResourceID)
			}
			for _, f := range res.Failed {
				fmt.Fprintf(cmd.ErrOrStderr(), "could not apply (still to do, see below): %s\n", f)
			}
			return printRevocation(res.RevokeResult)
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
		fmt.Fprintln(w, "\nstill to do outside the catalog (not reachable, or no wiring for it in this build):")
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
