package view

// imgpipe rollout: a rollout with its targets and members, the list of
// rollouts, the progress line of a step.

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/rollout"
)

// StepLine is the progress line of a rollout step.
func StepLine(s rollout.Step) string {
	line := fmt.Sprintf("rollout %d step %d: %s", s.Rollout, s.N, s.Action)
	if s.Target != "" {
		line += " " + ShortTarget(s.Target)
	}
	if s.Total > 0 {
		line += fmt.Sprintf(" (%d/%d on %s)", s.Done, s.Total, s.Version)
	}
	if s.Detail != "" {
		line += ": " + s.Detail
	}
	return line
}

// ShortTarget is the last element of an Azure resource id, other targets as they are.
func ShortTarget(t string) string {
	if strings.HasPrefix(t, "/subscriptions/") {
		return t[strings.LastIndex(t, "/")+1:]
	}
	return t
}

// Rollout draws a rollout: the record as JSON, else a summary, a row per
// target when there are several, and (withMembers) a row per member with
// the first line of its plan.
func Rollout(w io.Writer, asJSON bool, r catalog.Rollout, withMembers bool) error {
	if asJSON {
		return JSON(w, r)
	}
	fmt.Fprintf(w, "rollout %d: %s %s to %s: %s (%s)\nstarted %s, updated %s, %d steps", r.ID, r.Ref.Image, r.Ref.Version, r.Target, r.State, Dash(r.Detail),
		When(r.StartedAt), When(r.UpdatedAt), r.Steps)
	if r.Previous != "" {
		fmt.Fprintf(w, ", rolls back to %s", r.Previous)
	}
	if r.RollbackOf != 0 {
		fmt.Fprintf(w, ", rollback of rollout %d", r.RollbackOf)
	}
	fmt.Fprintln(w)
	if len(r.Targets) > 1 {
		t := Table{Header: []string{"TARGET", "KIND", "STATE", "BATCH", "DETAIL"}}
		for _, tg := range r.Targets {
			t.Rows = append(t.Rows, []string{ShortTarget(tg.Target), tg.Kind, tg.State, strconv.Itoa(tg.Batch), Dash(tg.Detail)})
		}
		if err := t.Fprint(w); err != nil {
			return err
		}
	}
	if !withMembers {
		return nil
	}
	t := Table{Header: []string{"MEMBER", "TARGET", "VERSION", "STATE", "HEALTHY", "PLAN"}}
	for _, m := range r.Members {
		plan, _, _ := strings.Cut(m.Plan, "\n")
		t.Rows = append(t.Rows, []string{m.Member, ShortTarget(m.Target), Dash(m.Version), m.State, strconv.FormatBool(m.Healthy), Dash(plan)})
	}
	return t.Fprint(w)
}

// Rollouts draws the list of rollouts (imgpipe rollout status).
func Rollouts(w io.Writer, asJSON bool, rs []catalog.Rollout) error {
	if asJSON {
		if rs == nil {
			rs = []catalog.Rollout{}
		}
		return JSON(w, rs)
	}
	t := Table{Header: []string{"ID", "IMAGE", "VERSION", "KIND", "TARGET", "STATE", "UPGRADED", "STARTED", "DETAIL"}}
	for _, r := range rs {
		up := 0
		for _, m := range r.Members {
			if m.State == azure.InstanceUpgraded {
				up++
			}
		}
		t.Rows = append(t.Rows, []string{strconv.FormatInt(r.ID, 10), r.Ref.Image, r.Ref.Version, r.Kind, ShortTarget(r.Target), r.State,
			fmt.Sprintf("%d/%d", up, len(r.Members)), When(r.StartedAt), Dash(r.Detail)})
	}
	return t.Fprint(w)
}

// Scripts draws the files imgpipe rollout scripts wrote, one a line.
func Scripts(w io.Writer, asJSON bool, id int64, files []string) error {
	if asJSON {
		return JSON(w, struct {
			ID    int64    `json:"rollout_id"`
			Files []string `json:"files"`
		}{id, files})
	}
	for _, p := range files {
		fmt.Fprintln(w, p)
	}
	return nil
}
