package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// Reconciler decisions (imgpipe reconcile).
const (
	DecisionRebuild = "rebuild" // a trigger matched and nothing held it back
	DecisionWait    = "wait"    // a trigger matched, but a guard holds it back
	DecisionStopped = "stopped" // the last rebuild failed: the loop is stopped for the image
	DecisionResume  = "resume"  // a person resumed a stopped loop
)

// States of a rebuild decision's run.
const (
	RebuildRunning   = "running"
	RebuildSucceeded = "succeeded"
	RebuildFailed    = "failed"
	// RebuildUnpromoted: built and published, but not promoted (no test gate
	// could pass it); the loop is not stopped, it waits for a person.
	RebuildUnpromoted = "unpromoted"
	RebuildAbandoned  = "abandoned" // its process died during the run
)

// Decision is one decision of the reconciler for an image, with its reason.
type Decision struct {
	ID       int64     `json:"id,omitempty"`
	Image    string    `json:"image"`
	Decision string    `json:"decision"`
	Trigger  string    `json:"trigger,omitempty"` // drift, revoke, parent, schedule
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
	RunID    int64     `json:"run_id,omitempty"`
	State    string    `json:"state,omitempty"`    // rebuilds: running, succeeded, failed, unpromoted, abandoned
	Claimant string    `json:"claimant,omitempty"` // rebuilds: "pid@host" of the process running it
	Version  string    `json:"version,omitempty"`  // rebuilds: the version it made
	EndedAt  time.Time `json:"ended_at,omitzero"`
}

const decisionColumns = "id, image, decision, trig, reason, at, run_id, state, claimant, version, ended_at"

func scanDecision(sc interface{ Scan(...any) error }) (Decision, error) {
	var d Decision
	var at, ended string
	if err := sc.Scan(&d.ID, &d.Image, &d.Decision, &d.Trigger, &d.Reason, &at, &d.RunID, &d.State, &d.Claimant, &d.Version, &ended); err != nil {
		return Decision{}, err
	}
	d.At, d.EndedAt = parseTime(at), parseTime(ended)
	return d, nil
}

func validDecision(d Decision) error {
	switch d.Decision {
	case DecisionRebuild, DecisionWait, DecisionStopped, DecisionResume:
	default:
		return fmt.Errorf("%w: decision %q: use rebuild, wait, stopped or resume", ErrInvalid, d.Decision)
	}
	if err := ValidateImageName(d.Image); err != nil {
		return err
	}
	if strings.TrimSpace(d.Reason) == "" {
		return fmt.Errorf("%w: a decision needs its reason", ErrInvalid)
	}
	return nil
}

// RecordDecision records a decision (At defaults to now).
func (c *Catalog) RecordDecision(ctx context.Context, d Decision) (Decision, error) {
	if err := validDecision(d); err != nil {
		return Decision{}, err
	}
	if d.At.IsZero() {
		d.At = c.now()
	}
	err := c.db.QueryRowContext(ctx, c.q(`INSERT INTO reconcile_decisions (image, decision, trig, reason, at, run_id, state, claimant, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), d.Image, d.Decision, d.Trigger, d.Reason, fmtTime(d.At), d.RunID, d.State, d.Claimant, d.Version).Scan(&d.ID)
	if err != nil {
		return Decision{}, fmt.Errorf("record the %s decision for %s: %w", d.Decision, d.Image, err)
	}
	d.At = parseTime(fmtTime(d.At))
	return d, nil
}

// Claimant names this process ("pid@host") for ClaimRebuild.
func Claimant() string { return strconv.Itoa(os.Getpid()) + "@" + thisHost() }

// ClaimRebuild records a rebuild decision in state running for this process,
// unless a rebuild of the image is already running: then it returns false and
// that running rebuild. The database enforces one running rebuild per image,
// so two reconcilers racing never both claim it.
func (c *Catalog) ClaimRebuild(ctx context.Context, d Decision) (Decision, bool, error) {
	d.Decision, d.State, d.Claimant = DecisionRebuild, RebuildRunning, Claimant()
	if err := validDecision(d); err != nil {
		return Decision{}, false, err
	}
	if d.At.IsZero() {
		d.At = c.now()
	}
	err := c.db.QueryRowContext(ctx, c.q(`INSERT INTO reconcile_decisions (image, decision, trig, reason, at, run_id, state, claimant, version)
		VALUES (?, ?, ?, ?, ?, 0, ?, ?, '') ON CONFLICT DO NOTHING RETURNING id`),
		d.Image, d.Decision, d.Trigger, d.Reason, fmtTime(d.At), d.State, d.Claimant).Scan(&d.ID)
	if errors.Is(err, sql.ErrNoRows) {
		running, ok, rerr := c.RunningRebuild(ctx, d.Image)
		if rerr != nil {
			return Decision{}, false, rerr
		}
		if ok {
			return running, false, nil
		}
		// its claimant is gone (or it just ended): mark it abandoned and claim once more
		if aerr := c.abandonGone(ctx, d.Image); aerr != nil {
			return Decision{}, false, aerr
		}
		err = c.db.QueryRowContext(ctx, c.q(`INSERT INTO reconcile_decisions (image, decision, trig, reason, at, run_id, state, claimant, version)
			VALUES (?, ?, ?, ?, ?, 0, ?, ?, '') ON CONFLICT DO NOTHING RETURNING id`),
			d.Image, d.Decision, d.Trigger, d.Reason, fmtTime(d.At), d.State, d.Claimant).Scan(&d.ID)
		if errors.Is(err, sql.ErrNoRows) {
			return Decision{}, false, fmt.Errorf("claim the rebuild of %s: another reconciler claimed it at the same moment; run imgpipe reconcile again", d.Image)
		}
	}
	if err != nil {
		return Decision{}, false, fmt.Errorf("claim the rebuild of %s: %w", d.Image, err)
	}
	d.At = parseTime(fmtTime(d.At))
	return d, true, nil
}

// RunningRebuild returns the image's running rebuild, if any. It only
// reads: a rebuild claimed by a process of this host that is no longer
// alive is not returned (ClaimRebuild marks it abandoned).
func (c *Catalog) RunningRebuild(ctx context.Context, image string) (Decision, bool, error) {
	d, err := c.runningRebuild(ctx, image)
	if errors.Is(err, sql.ErrNoRows) {
		return Decision{}, false, nil
	}
	if err != nil {
		return Decision{}, false, fmt.Errorf("read the running rebuild of %s: %w", image, err)
	}
	if claimantGone(d.Claimant) {
		return Decision{}, false, nil
	}
	return d, true, nil
}

func (c *Catalog) runningRebuild(ctx context.Context, image string) (Decision, error) {
	return scanDecision(c.db.QueryRowContext(ctx, c.q("SELECT "+decisionColumns+" FROM reconcile_decisions WHERE image = ? AND state = ?"), image, RebuildRunning))
}

// claimantGone: the claimant ran on this host and its process is not alive.
func claimantGone(claimant string) bool {
	pid, host, ok := strings.Cut(claimant, "@")
	if !ok || host != thisHost() {
		return false
	}
	n, err := strconv.Atoi(pid)
	return err == nil && n > 0 && !processAlive(n)
}

// abandonGone marks the image's running rebuild abandoned when its claimant is gone.
func (c *Catalog) abandonGone(ctx context.Context, image string) error {
	d, err := c.runningRebuild(ctx, image)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read the running rebuild of %s: %w", image, err)
	}
	if !claimantGone(d.Claimant) {
		return nil
	}
	err = c.FinishRebuild(ctx, d.ID, RebuildAbandoned, "", 0)
	if errors.Is(err, ErrNotFound) {
		return nil // it ended in between
	}
	return err
}

// SetDecisionRun records the pipeline run carrying out a rebuild decision.
func (c *Catalog) SetDecisionRun(ctx context.Context, id, runID int64) error {
	if _, err := c.db.ExecContext(ctx, c.q("UPDATE reconcile_decisions SET run_id = ? WHERE id = ?"), runID, id); err != nil {
		return fmt.Errorf("record run %d of decision %d: %w", runID, id, err)
	}
	return nil
}

// FinishRebuild records how a rebuild decision ended (state one of the
// Rebuild* states but running), the version it made and its run (0 keeps).
func (c *Catalog) FinishRebuild(ctx context.Context, id int64, state, version string, runID int64) error {
	switch state {
	case RebuildSucceeded, RebuildFailed, RebuildUnpromoted, RebuildAbandoned:
	default:
		return fmt.Errorf("%w: rebuild state %q", ErrInvalid, state)
	}
	res, err := c.db.ExecContext(ctx, c.q(`UPDATE reconcile_decisions SET state = ?, ended_at = ?,
		version = CASE WHEN ? = '' THEN version ELSE ? END, run_id = CASE WHEN ? = 0 THEN run_id ELSE ? END
		WHERE id = ? AND state = ?`), state, c.nowText(), version, version, runID, runID, id, RebuildRunning)
	if err != nil {
		return fmt.Errorf("finish rebuild decision %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no running rebuild decision %d", ErrNotFound, id)
	}
	return nil
}

// DecisionFilter selects decisions; zero fields match everything.
type DecisionFilter struct {
	Image    string
	Decision string
	Since    time.Time // at or after
	Limit    int       // 0: 100
}

// Decisions lists decisions, newest first.
func (c *Catalog) Decisions(ctx context.Context, f DecisionFilter) ([]Decision, error) {
	var where []string
	var args []any
	if f.Image != "" {
		where, args = append(where, "image = ?"), append(args, f.Image)
	}
	if f.Decision != "" {
		where, args = append(where, "decision = ?"), append(args, f.Decision)
	}
	if !f.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, fmtTime(f.Since))
	}
	if f.Limit <= 0 {
		f.Limit = 100
	}
	query := "SELECT " + decisionColumns + " FROM reconcile_decisions"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	query += " ORDER BY at DESC, id DESC LIMIT " + strconv.Itoa(f.Limit)
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list reconcile decisions: %w", err)
	}
	defer rows.Close()
	var out []Decision
	for rows.Next() {
		d, err := scanDecision(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// DriftSince returns since when the reconciler has seen the image's drift
// threshold held for channel (zero: it is not held).
func (c *Catalog) DriftSince(ctx context.Context, image, channel string) (time.Time, error) {
	var since string
	err := c.db.QueryRowContext(ctx, c.q("SELECT since FROM reconcile_drift WHERE image = ? AND channel = ?"), image, channel).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read the drift observation of %s: %w", image, err)
	}
	return parseTime(since), nil
}

// SetDriftSince records since when the threshold has held; zero clears it.
func (c *Catalog) SetDriftSince(ctx context.Context, image, channel string, since time.Time) error {
	var err error
	if since.IsZero() {
		_, err = c.db.ExecContext(ctx, c.q("DELETE FROM reconcile_drift WHERE image = ? AND channel = ?"), image, channel)
	} else {
		_, err = c.db.ExecContext(ctx, c.q(`INSERT INTO reconcile_drift (image, channel, since) VALUES (?, ?, ?)
			ON CONFLICT (image, channel) DO UPDATE SET since = excluded.since`), image, channel, fmtTime(since))
	}
	if err != nil {
		return fmt.Errorf("record the drift observation of %s: %w", image, err)
	}
	return nil
}

// DriftedSinceOf returns, for each host of image whose last report found
// drift, since when it has been drifted without a break (the fleet's
// per-host history, migration 12). Hosts without that time are left out.
func (c *Catalog) DriftedSinceOf(ctx context.Context, image string) (map[string]time.Time, error) {
	rows, err := c.db.QueryContext(ctx, c.q("SELECT name, drifted_since FROM hosts WHERE image = ? AND drifted_since <> ''"), image)
	if err != nil {
		return nil, fmt.Errorf("read since when the hosts of %s drifted: %w", image, err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var name, since string
		if err := rows.Scan(&name, &since); err != nil {
			return nil, err
		}
		if t := parseTime(since); !t.IsZero() {
			out[name] = t
		}
	}
	return out, rows.Err()
}

// LoopState is what the reconciler's record says of an image's loop, for
// views (the dashboard): its newest rebuild, and the stop in force.
type LoopState struct {
	LastRebuild *Decision `json:"last_rebuild,omitempty"`
	// Stopped is the stopped decision in force (nil: the loop runs): the
	// newest of stopped and resume decisions is a stop.
	Stopped *Decision `json:"stopped,omitempty"`
}

// Loop returns the loop state of image (zero when the reconciler never
// decided anything for it).
func (c *Catalog) Loop(ctx context.Context, image string) (LoopState, error) {
	var st LoopState
	newest := func(kind string) (*Decision, error) {
		ds, err := c.Decisions(ctx, DecisionFilter{Image: image, Decision: kind, Limit: 1})
		if err != nil || len(ds) == 0 {
			return nil, err
		}
		return &ds[0], nil
	}
	var err error
	if st.LastRebuild, err = newest(DecisionRebuild); err != nil {
		return st, err
	}
	stop, err := newest(DecisionStopped)
	if err != nil || stop == nil {
		return st, err
	}
	resume, err := newest(DecisionResume)
	if err != nil {
		return st, err
	}
	if resume == nil || stop.At.After(resume.At) || (stop.At.Equal(resume.At) && stop.ID > resume.ID) {
		st.Stopped = stop
	}
	return st, nil
}
