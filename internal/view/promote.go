package view

// imgpipe promote and imgpipe revoke.

import (
	"fmt"
	"io"

	"imgpipe/internal/promote"
)

// Promotion draws a channel move: as JSON, or a line saying what moved and
// the gallery versions now in latest, or still excluded from it.
func Promotion(w io.Writer, asJSON bool, p promote.Result) error {
	if asJSON {
		return JSON(w, p)
	}
	var err error
	switch {
	case p.NoOp:
		_, err = fmt.Fprintf(w, "%s of %s already points at %s: nothing to do\n", p.Channel, p.Image, p.To)
	case p.From == "":
		_, err = fmt.Fprintf(w, "%s of %s: now %s (by %s at %s)\n", p.Channel, p.Image, p.To, p.By, When(p.At))
	default:
		_, err = fmt.Fprintf(w, "%s of %s: %s -> %s (by %s at %s)\n", p.Channel, p.Image, p.From, p.To, p.By, When(p.At))
	}
	for _, id := range p.Included {
		fmt.Fprintf(w, "  in latest: %s\n", id)
	}
	for _, l := range p.Left {
		fmt.Fprintf(w, "  STILL EXCLUDED from latest: %s\n", l)
	}
	return err
}

// Revocation draws a revocation: as JSON, or what was done outside the
// catalog, what failed (to errw), what was revoked, what is still to do,
// the hosts running a revoked version, the channels still pointing at one
// and the descendants left outdated.
func Revocation(w, errw io.Writer, asJSON bool, res promote.Revocation) error {
	if asJSON {
		return JSON(w, res)
	}
	for _, a := range res.Done {
		fmt.Fprintf(w, "done: %s %s %s\n", a.Action, a.Copy.Kind, a.Copy.ResourceID)
	}
	for _, f := range res.Failed {
		fmt.Fprintf(errw, "could not apply (still to do, see below): %s\n", f)
	}
	for _, r := range res.Revoked {
		fmt.Fprintf(w, "revoked %s\n", r)
	}
	for _, r := range res.AlreadyRevoked {
		fmt.Fprintf(w, "already revoked %s\n", r)
	}
	if len(res.Actions) > 0 {
		fmt.Fprintln(w, "\nstill to do outside the catalog (not reachable, or no wiring for it in this build):")
		t := Table{Header: []string{"VERSION", "ACTION", "COPY", "RESOURCE"}}
		for _, a := range res.Actions {
			t.Rows = append(t.Rows, []string{a.Ref.String(), a.Action, string(a.Copy.Kind), a.Copy.ResourceID})
		}
		if err := t.Fprint(w); err != nil {
			return err
		}
	}
	if len(res.Hosts) > 0 {
		fmt.Fprintln(w, "\nhosts running a revoked version (rebuild or redeploy them):")
		t := Table{Header: []string{"HOST", "PLATFORM", "RUNS", "LAST REPORT"}}
		for _, h := range res.Hosts {
			t.Rows = append(t.Rows, []string{h.Name, h.Platform, h.Image + "@" + h.Version, When(h.LastReport)})
		}
		if err := t.Fprint(w); err != nil {
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
