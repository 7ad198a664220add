package reconcile

import (
	"fmt"
	"strings"

	"imgpipe/internal/catalog"
)

// DecisionHeader and DecisionRows are the table of a round's decisions,
// the ones that act first.
var DecisionHeader = []string{"IMAGE", "DECISION", "REASON"}

// DecisionRows renders decisions as rows of DecisionHeader.
func DecisionRows(ds []Decision) [][]string {
	rows := make([][]string, 0, len(ds))
	for _, d := range Sorted(ds) {
		action := d.Action
		if d.Repeated {
			action += " (again)"
		}
		rows = append(rows, []string{d.Image, action, d.Reason})
	}
	return rows
}

// String says how a rebuild went, in one line.
func (o Outcome) String() string {
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

// HistoryHeader and HistoryRows are the table of recorded decisions
// (imgpipe reconcile history).
var HistoryHeader = []string{"AT", "IMAGE", "DECISION", "STATE", "REASON"}

// HistoryRows renders recorded decisions as rows of HistoryHeader.
func HistoryRows(ds []catalog.Decision) [][]string {
	rows := make([][]string, 0, len(ds))
	for _, d := range ds {
		state := d.State
		if d.RunID != 0 {
			state += fmt.Sprintf(" run %d", d.RunID)
		}
		if d.Version != "" {
			state += " " + d.Version
		}
		rows = append(rows, []string{d.At.UTC().Format("2006-01-02 15:04Z"), d.Image, d.Decision, strings.TrimSpace(state), d.Reason})
	}
	return rows
}
