package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Run kinds.
const (
	RunPlan    = "plan"
	RunPublish = "publish"
	RunDestroy = "destroy"
	RunGC      = "gc"
	RunBuild   = "build"
	RunRevoke  = "revoke"
)

// Step states (besides RunRunning/RunSucceeded/RunFailed a step may be skipped).
const StepSkipped = "skipped"

// RunAbandoned is the state of a run whose process went away without
// finishing it (killed, crashed, its host lost): set when another run takes
// over the image lock it held.
const RunAbandoned = "abandoned"

// StartRun records the start of a run (status running) and returns it.
func (c *Catalog) StartRun(ctx context.Context, r Run) (Run, error) {
	if r.Kind == "" {
		return Run{}, fmt.Errorf("%w: a run needs a kind (plan, publish, destroy, gc, build)", ErrInvalid)
	}
	r.Status = RunRunning
	now := c.nowText()
	err := c.db.QueryRowContext(ctx, c.q(`INSERT INTO runs (kind, image, version, status, started_by, started_at)
		VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), r.Kind, r.Image, r.Version, r.Status, r.By, now).Scan(&r.ID)
	if err != nil {
		return Run{}, fmt.Errorf("record %s run: %w", r.Kind, err)
	}
	r.StartedAt = parseTime(now)
	r.Steps = nil
	// Waiters for the image's lock see which run holds it.
	for _, l := range heldLocks(ctx) {
		if l.image == r.Image {
			if err := l.SetRun(ctx, r.ID); err != nil {
				return r, err
			}
		}
	}
	return r, nil
}

// AddStep appends a step to a run and returns it (with its sequence number).
func (c *Catalog) AddStep(ctx context.Context, runID int64, st Step) (Step, error) {
	if st.Name == "" {
		return Step{}, fmt.Errorf("%w: a step needs a name", ErrInvalid)
	}
	if st.Status == "" {
		st.Status = RunRunning
	}
	ids, _ := json.Marshal(nonNil(st.ResourceIDs))
	now := c.nowText()
	ended := ""
	if st.Status != RunRunning {
		ended = now
	}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		var n sql.NullInt64
		if err := tx.QueryRowContext(ctx, c.q("SELECT MAX(seq) FROM run_steps WHERE run_id = ?"), runID).Scan(&n); err != nil {
			return err
		}
		st.Seq = int(n.Int64) + 1
		_, err := tx.ExecContext(ctx, c.q(`INSERT INTO run_steps (run_id, seq, name, status, detail, resource_ids, started_at, ended_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`), runID, st.Seq, st.Name, st.Status, st.Detail, string(ids), now, ended)
		return err
	})
	if err != nil {
		return Step{}, fmt.Errorf("record step %s of run %d: %w", st.Name, runID, err)
	}
	st.StartedAt, st.EndedAt = parseTime(now), parseTime(ended)
	return st, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// UpdateStep sets a step's status, detail and resource ids (what it made).
func (c *Catalog) UpdateStep(ctx context.Context, runID int64, seq int, status, detail string, resourceIDs []string) error {
	ids, _ := json.Marshal(nonNil(resourceIDs))
	ended := ""
	if status != RunRunning {
		ended = c.nowText()
	}
	res, err := c.db.ExecContext(ctx, c.q("UPDATE run_steps SET status = ?, detail = ?, resource_ids = ?, ended_at = ? WHERE run_id = ? AND seq = ?"),
		status, detail, string(ids), ended, runID, seq)
	if err != nil {
		return fmt.Errorf("update step %d of run %d: %w", seq, runID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: step %d of run %d", ErrNotFound, seq, runID)
	}
	return nil
}

// FinishRun ends a run: succeeded when runErr is nil, failed with its message.
func (c *Catalog) FinishRun(ctx context.Context, runID int64, runErr error) error {
	status, msg := RunSucceeded, ""
	if runErr != nil {
		status, msg = RunFailed, runErr.Error()
	}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, c.q("UPDATE runs SET status = ?, error = ?, ended_at = ? WHERE id = ?"), status, msg, c.nowText(), runID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: run %d", ErrNotFound, runID)
		}
		return c.emitRunTx(ctx, tx, runID) // events.go
	})
	if err != nil {
		return fmt.Errorf("finish run %d: %w", runID, err)
	}
	return nil
}

// RunFilter selects runs; zero fields match everything.
type RunFilter struct {
	Image  string
	Kind   string
	Status string
	Limit  int // default 50
}

// Runs lists runs, newest first, with their steps. Runs whose process
// went away holding an image lock are first marked abandoned
// (ReapAbandoned), so a killed run does not show as running forever.
func (c *Catalog) Runs(ctx context.Context, f RunFilter) ([]Run, error) {
	if _, err := c.ReapAbandoned(ctx); err != nil {
		return nil, err
	}
	var where []string
	var args []any
	for _, p := range []struct{ col, val string }{{"image", f.Image}, {"kind", f.Kind}, {"status", f.Status}} {
		if p.val != "" {
			where = append(where, p.col+" = ?")
			args = append(args, p.val)
		}
	}
	query := "SELECT id, kind, image, version, status, started_by, started_at, ended_at, error FROM runs"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	query += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", f.Limit)
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	var out []Run
	for rows.Next() {
		var r Run
		var started, ended string
		if err := rows.Scan(&r.ID, &r.Kind, &r.Image, &r.Version, &r.Status, &r.By, &started, &ended, &r.Error); err != nil {
			rows.Close()
			return nil, err
		}
		r.StartedAt, r.EndedAt = parseTime(started), parseTime(ended)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Steps, err = c.steps(ctx, out[i].ID); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Run returns one run with its steps (after ReapAbandoned, as Runs).
func (c *Catalog) Run(ctx context.Context, id int64) (Run, error) {
	if _, err := c.ReapAbandoned(ctx); err != nil {
		return Run{}, err
	}
	var r Run
	var started, ended string
	err := c.db.QueryRowContext(ctx, c.q("SELECT id, kind, image, version, status, started_by, started_at, ended_at, error FROM runs WHERE id = ?"), id).
		Scan(&r.ID, &r.Kind, &r.Image, &r.Version, &r.Status, &r.By, &started, &ended, &r.Error)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("%w: run %d (imgpipe runs lists them)", ErrNotFound, id)
	}
	if err != nil {
		return Run{}, fmt.Errorf("read run %d: %w", id, err)
	}
	r.StartedAt, r.EndedAt = parseTime(started), parseTime(ended)
	r.Steps, err = c.steps(ctx, id)
	return r, err
}

func (c *Catalog) steps(ctx context.Context, runID int64) ([]Step, error) {
	rows, err := c.db.QueryContext(ctx, c.q("SELECT seq, name, status, detail, resource_ids, started_at, ended_at FROM run_steps WHERE run_id = ? ORDER BY seq"), runID)
	if err != nil {
		return nil, fmt.Errorf("read steps of run %d: %w", runID, err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		var s Step
		var ids, started, ended string
		if err := rows.Scan(&s.Seq, &s.Name, &s.Status, &s.Detail, &ids, &started, &ended); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(ids), &s.ResourceIDs)
		s.StartedAt, s.EndedAt = parseTime(started), parseTime(ended)
		out = append(out, s)
	}
	return out, rows.Err()
}
