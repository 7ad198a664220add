package view

// imgpipe reconcile: a round's decisions and rebuilds, the recorded history.

import (
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/catalog"
	"imgpipe/internal/reconcile"
)

// Decisions draws a round of imgpipe reconcile: as JSON, or the table of its decisions (the
// ones that act first), a line per rebuild and, on a dry run, that nothing
// changed.
func Decisions(w io.Writer, asJSON, dryRun bool, rd reconcile.Round) error {
	ds, outcomes := rd.Decisions, rd.Outcomes
	if ds == nil {
		ds = []reconcile.Decision{}
	}
	if asJSON {
		return JSON(w, struct {
			DryRun    bool                 `json:"dry_run"`
			Decisions []reconcile.Decision `json:"decisions"`
			Outcomes  []reconcile.Outcome  `json:"outcomes,omitempty"`
		}{dryRun, ds, outcomes})
	}
	t := Table{Header: []string{"IMAGE", "DECISION", "REASON"}}
	for _, d := range reconcile.Sorted(ds) {
		action := d.Action
		if d.Repeated {
			action += " (again)"
		}
		t.Rows = append(t.Rows, []string{d.Image, action, d.Reason})
	}
	if err := t.Fprint(w); err != nil {
		return err
	}
	for _, o := range outcomes {
		fmt.Fprintln(w, Outcome(o))
	}
	if dryRun {
		fmt.Fprintln(w, "dry run: nothing was recorded, built or promoted")
	}
	return nil
}

// Outcome says how a rebuild went, in one line.
func Outcome(o reconcile.Outcome) string {
	switch {
	case !o.Claimed:
		id := int64(0)
		if o.Running != nil {
			id = o.Running.ID
		}
		return fmt.Sprintf("%s: a rebuild was already running (decision %d); none started", o.Image, id)
	case o.Stopped != "":
		return o.Image + ": " + o.Stopped
	}
	s := fmt.Sprintf("%s: rebuilt %s (run %d), promoted to %s", o.Image, o.Version, o.RunID, o.Promoted)
	if o.Rollout != 0 {
		s += fmt.Sprintf(", rollout %d (imgpipe rollout status --id %d)", o.Rollout, o.Rollout)
	}
	if o.RolloutError != "" {
		s += ": " + o.RolloutError
	}
	return s
}

// History draws the recorded decisions (imgpipe reconcile history).
func History(w io.Writer, asJSON bool, ds []catalog.Decision) error {
	if asJSON {
		return JSON(w, append([]catalog.Decision{}, ds...))
	}
	t := Table{Header: []string{"AT", "IMAGE", "DECISION", "STATE", "REASON"}}
	for _, d := range ds {
		state := d.State
		if d.RunID != 0 {
			state += fmt.Sprintf(" run %d", d.RunID)
		}
		if d.Version != "" {
			state += " " + d.Version
		}
		t.Rows = append(t.Rows, []string{d.At.UTC().Format("2006-01-02 15:04Z"), d.Image, d.Decision, strings.TrimSpace(state), d.Reason})
	}
	return t.Fprint(w)
}

// Resumed draws the decision that resumed an image's loop.
func Resumed(w io.Writer, asJSON bool, rec catalog.Decision) error {
	return Write(w, asJSON, rec, fmt.Sprintf("%s: %s; the next imgpipe reconcile evaluates it again\n", rec.Image, rec.Reason))
}
