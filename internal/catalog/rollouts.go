package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rollout kinds and states.
const (
	RolloutScaleSet = "scale_set" // an Azure virtual machine scale set

	RolloutRunning   = "running"
	RolloutCompleted = "completed"
	RolloutFailed    = "failed" // stopped: unhealthy batch, cancelled, error
)

// RolloutMember is one instance (or host) of a rollout.
type RolloutMember struct {
	Member    string    `json:"member"`
	Version   string    `json:"version"` // what it runs now
	State     string    `json:"state"`   // pending, upgrading, upgraded, unhealthy
	Healthy   bool      `json:"healthy"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Rollout is a version being rolled out to a target (a scale set id).
type Rollout struct {
	ID         int64           `json:"id"`
	Ref        Ref             `json:"ref"`
	Kind       string          `json:"kind"`
	Target     string          `json:"target"`
	State      string          `json:"state"`
	Detail     string          `json:"detail,omitempty"`
	StartedAt  time.Time       `json:"started_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	Members    []RolloutMember `json:"members"`
}

// StartRollout records a rollout of ref to target as running.
func (c *Catalog) StartRollout(ctx context.Context, ref Ref, kind, target string) (Rollout, error) {
	if strings.TrimSpace(target) == "" || kind == "" {
		return Rollout{}, fmt.Errorf("%w: a rollout needs a kind and a target", ErrInvalid)
	}
	r := Rollout{Ref: ref, Kind: kind, Target: target, State: RolloutRunning, StartedAt: c.now().UTC(), Members: []RolloutMember{}}
	r.UpdatedAt = r.StartedAt
	err := c.tx(ctx, func(tx *sql.Tx) error {
		vid, err := c.versionID(ctx, tx, ref)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, c.q(`INSERT INTO rollouts (version_id, kind, target, state, started_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`), vid, kind, target, r.State, fmtTime(r.StartedAt), fmtTime(r.UpdatedAt)).Scan(&r.ID); err != nil {
			return err
		}
		return c.emitRolloutTx(ctx, tx, r.ID, r.State, "started", nil) // events.go
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("record rollout of %s to %s: %w", ref, target, err)
	}
	return r, nil
}

// UpdateRollout replaces the members' state and sets the rollout's state
// and detail; a state other than running finishes it.
func (c *Catalog) UpdateRollout(ctx context.Context, id int64, state, detail string, members []RolloutMember) error {
	switch state {
	case RolloutRunning, RolloutCompleted, RolloutFailed:
	default:
		return fmt.Errorf("%w: rollout state %q (want running, completed or failed)", ErrInvalid, state)
	}
	t := c.nowText()
	finished := ""
	if state != RolloutRunning {
		finished = t
	}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		var cur string
		if err := tx.QueryRowContext(ctx, c.q("SELECT state FROM rollouts WHERE id = ?"), id).Scan(&cur); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: rollout %d", ErrNotFound, id)
			}
			return err
		}
		if cur != RolloutRunning {
			return fmt.Errorf("%w: rollout %d is already %s", ErrConflict, id, cur)
		}
		if _, err := tx.ExecContext(ctx, c.q("UPDATE rollouts SET state = ?, detail = ?, updated_at = ?, finished_at = ? WHERE id = ?"), state, detail, t, finished, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, c.q("DELETE FROM rollout_members WHERE rollout_id = ?"), id); err != nil {
			return err
		}
		for _, m := range members {
			healthy := 0
			if m.Healthy {
				healthy = 1
			}
			if _, err := tx.ExecContext(ctx, c.q("INSERT INTO rollout_members (rollout_id, member, version, state, healthy, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
				id, m.Member, m.Version, m.State, healthy, t); err != nil {
				return err
			}
		}
		return c.emitRolloutTx(ctx, tx, id, state, detail, members) // events.go
	})
	if err != nil {
		return fmt.Errorf("update rollout %d: %w", id, err)
	}
	return nil
}

// Rollouts lists the rollouts of an image (all images when image is ""),
// newest first, with their members; at most limit (0: 50).
func (c *Catalog) Rollouts(ctx context.Context, image string, limit int) ([]Rollout, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT r.id, i.name, v.version, r.kind, r.target, r.state, r.detail, r.started_at, r.updated_at, r.finished_at
		FROM rollouts r JOIN versions v ON v.id = r.version_id JOIN images i ON i.id = v.image_id`
	args := []any{}
	if image != "" {
		q += " WHERE i.name = ?"
		args = append(args, image)
	}
	q += " ORDER BY r.started_at DESC, r.id DESC LIMIT ?"
	args = append(args, limit)
	return c.rollouts(ctx, q, args...)
}

// RolloutByID returns one rollout with its members.
func (c *Catalog) RolloutByID(ctx context.Context, id int64) (Rollout, error) {
	rs, err := c.rollouts(ctx, `SELECT r.id, i.name, v.version, r.kind, r.target, r.state, r.detail, r.started_at, r.updated_at, r.finished_at
		FROM rollouts r JOIN versions v ON v.id = r.version_id JOIN images i ON i.id = v.image_id WHERE r.id = ?`, id)
	if err != nil {
		return Rollout{}, err
	}
	if len(rs) == 0 {
		return Rollout{}, fmt.Errorf("%w: rollout %d", ErrNotFound, id)
	}
	return rs[0], nil
}

func (c *Catalog) rollouts(ctx context.Context, query string, args ...any) ([]Rollout, error) {
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	var out []Rollout
	for rows.Next() {
		var r Rollout
		var started, updated, finished string
		if err := rows.Scan(&r.ID, &r.Ref.Image, &r.Ref.Version, &r.Kind, &r.Target, &r.State, &r.Detail, &started, &updated, &finished); err != nil {
			rows.Close()
			return nil, err
		}
		r.StartedAt, r.UpdatedAt, r.FinishedAt = parseTime(started), parseTime(updated), parseTime(finished)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		ms, err := c.db.QueryContext(ctx, c.q("SELECT member, version, state, healthy, updated_at FROM rollout_members WHERE rollout_id = ?"), out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Members = []RolloutMember{}
		for ms.Next() {
			var m RolloutMember
			var healthy int
			var at string
			if err := ms.Scan(&m.Member, &m.Version, &m.State, &healthy, &at); err != nil {
				ms.Close()
				return nil, err
			}
			m.Healthy, m.UpdatedAt = healthy == 1, parseTime(at)
			out[i].Members = append(out[i].Members, m)
		}
		ms.Close()
		if err := ms.Err(); err != nil {
			return nil, err
		}
		sortMembers(out[i].Members)
	}
	return out, nil
}

// sortMembers orders members numerically when they are instance ids.
func sortMembers(ms []RolloutMember) {
	slices.SortFunc(ms, func(a, b RolloutMember) int {
		if len(a.Member) != len(b.Member) {
			return len(a.Member) - len(b.Member)
		}
		return strings.Compare(a.Member, b.Member)
	})
}
