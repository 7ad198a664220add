package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
)

func init() { register(newRevokeCmd) }

// kindRevoker dispatches each action to the revoker of its copy kind.
type kindRevoker map[catalog.CopyKind]catalog.Revoker

func (k kindRevoker) RevokeCopy(ctx context.Context, a catalog.RevokeAction) error {
	r, ok := k[a.Copy.Kind]
	if !ok {
		return fmt.Errorf("no revoker for %s copies", a.Copy.Kind)
	}
	return r.RevokeCopy(ctx, a)
}

// applyRevokers performs the actions that have a registered revoker and
// returns those left to do by hand.
func applyRevokers(ctx context.Context, c *catalog.Catalog, res *catalog.RevokeResult) (done, left []catalog.RevokeAction, err error) {
	kr := kindRevoker{}
	var mine catalog.RevokeResult
	for _, a := range res.Actions {
		mk, ok := revokerFor(a.Copy.Kind) // kinds without one are printed as still to do
		if !ok {
			left = append(left, a)
			continue
		}
		if _, have := kr[a.Copy.Kind]; !have {
			r, err := mk(ctx)
			if err != nil {
				return nil, res.Actions, err
			}
			kr[a.Copy.Kind] = r
		}
		mine.Actions = append(mine.Actions, a)
	}
	if len(mine.Actions) == 0 {
		return nil, left, nil
	}
	err = c.ApplyRevocation(ctx, &mine, kr)
	after := map[int64]string{}
	for _, a := range mine.Actions {
		cps, cerr := c.Copies(ctx, a.Ref)
		if cerr != nil {
			return nil, res.Actions, cerr
		}
		for _, cp := range cps {
			after[cp.ID] = cp.State
		}
	}
	for _, a := range mine.Actions {
		if after[a.Copy.ID] == catalog.StateRevoked {
			done = append(done, a)
		} else {
			left = append(left, a)
		}
	}
	return done, left, err
}

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

What must change outside the catalog is done too: the gallery image version
is excluded from latest and tagged revoked=<reason> (Azure connection as for
publish), the on-prem library copy is marked revoked in the library. Each
copy changed is marked Revoked in the catalog; one that could not be
changed (Azure or the library unreachable) is printed as still to do, with
the reason on stderr, and the revocation in the catalog stands. The command also lists the
hosts that run a revoked version and the channels still pointing at one
(promote a newer version to move them).`,
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
			if err := emitEvent(ctx, c, events.TypeRevocation, ref.String(), res); err != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: %v\n", err)
			}
			// The revocation is recorded; what could not be changed outside
			// the catalog (Azure or the library unreachable) is listed as
			// still to do, with why, and does not undo it.
			done, left, aerr := applyRevokers(ctx, c, res)
			res.Actions = left
			var failed []string
			if aerr != nil {
				for _, line := range strings.Split(aerr.Error(), "\n") {
					if line = strings.TrimSpace(line); line != "" {
						failed = append(failed, line)
					}
				}
			}
			if jsonOutput() {
				return printJSON(struct {
					*catalog.RevokeResult
					Done   []catalog.RevokeAction `json:"done,omitempty"`
					Failed []string               `json:"failed,omitempty"`
				}{res, done, failed})
			}
			for _, a := range done {
				fmt.Fprintf(stdout, "done: %s %s %s\n", a.Action, a.Copy.Kind, a.Copy.ResourceID)
			}
			for _, f := range failed {
				fmt.Fprintf(cmd.ErrOrStderr(), "could not apply (still to do, see below): %s\n", f)
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
