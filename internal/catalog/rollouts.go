package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Rollout kinds and states.
const (
	RolloutScaleSet = "scale_set" // an Azure virtual machine scale set (a target, or a rollout of one)
	RolloutVM       = "vm"        // an Azure standalone VM (replaced, never changed in place)
	RolloutHosts    = "hosts"     // the on-prem Hyper-V hosts of a channel
	RolloutPolicy   = "policy"    // a rollout of several targets, from a rollout block

	RolloutRunning    = "running"
	RolloutPaused     = "paused" // stopped by a person or an unhealthy batch; resume continues it
	RolloutCompleted  = "completed"
	RolloutFailed     = "failed"      // stopped for good: an error, cancelled
	RolloutRolledBack = "rolled_back" // replaced by a rollout to the previous version
	RolloutSuperseded = "superseded"  // replaced by a rollout of a newer version to the same targets
)

// RolloutMember is one instance (or host) of a rollout.
type RolloutMember struct {
	Member    string    `json:"member"`
	Target    string    `json:"target,omitempty"` // the target it belongs to
	Version   string    `json:"version"`          // what it runs now
	State     string    `json:"state"`            // pending, upgrading, upgraded, unhealthy, replace
	Healthy   bool      `json:"healthy"`
	Plan      string    `json:"plan,omitempty"` // how to replace it (a plan or a script)
	UpdatedAt time.Time `json:"updated_at"`
}

// RolloutTarget is one thing a rollout moves: a scale set, a standalone VM,
// the on-prem hosts of a channel.
type RolloutTarget struct {
	Target string `json:"target"`
	Kind   string `json:"kind"`
	State  string `json:"state"` // running, paused, completed, failed
	Detail string `json:"detail,omitempty"`
	Mode   string `json:"mode,omitempty"` // a scale set's upgrade mode: Rolling or Manual
	Batch  int    `json:"batch"`          // batches done
	// NextAt is the earliest time of the next batch (pause between batches).
	NextAt time.Time `json:"next_at,omitzero"`
	// UpgradeAt is when the Azure rolling upgrade this rollout follows started.
	UpgradeAt time.Time `json:"upgrade_at,omitzero"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Rollout is a version being rolled out to its targets.
type Rollout struct {
	ID         int64           `json:"id"`
	Ref        Ref             `json:"ref"`
	Kind       string          `json:"kind"`
	Target     string          `json:"target"`
	Channel    string          `json:"channel,omitempty"`
	Previous   string          `json:"previous,omitempty"` // the version the targets ran before
	RollbackOf int64           `json:"rollback_of,omitempty"`
	State      string          `json:"state"`
	Detail     string          `json:"detail,omitempty"`
	Policy     json.RawMessage `json:"policy,omitempty"`
	Steps      int             `json:"steps"`
	StartedAt  time.Time       `json:"started_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	FinishedAt time.Time       `json:"finished_at,omitzero"`
	Targets    []RolloutTarget `json:"targets"`
	Members    []RolloutMember `json:"members"`
}

// Done says whether the rollout is over (completed, failed, rolled back).
func (r Rollout) Done() bool {
	switch r.State {
	case RolloutCompleted, RolloutFailed, RolloutRolledBack, RolloutSuperseded:
		return true
	}
	return false
}

// NewRollout is a rollout to record.
type NewRollout struct {
	Ref        Ref
	Kind       string
	Target     string
	Channel    string
	Previous   string
	RollbackOf int64
	Policy     json.RawMessage
	Targets    []RolloutTarget
	// Event, when set, is the rollout's first step (N 1), emitted with the
	// record; otherwise a "started" step is.
	Event *RolloutEvent
}

// RolloutEvent is one step of a rollout as an event: N numbers the steps
// of the rollout from 1 and names the event (rollout-ID-step-N), Data is
// its JSON data. Data with a method SetRolloutID(int64) is given the
// rollout's id before it is encoded (the first step exists before the id).
type RolloutEvent struct {
	N    int
	Data any
}

// StartRollout records a rollout of ref to target as running.
func (c *Catalog) StartRollout(ctx context.Context, ref Ref, kind, target string) (Rollout, error) {
	return c.CreateRollout(ctx, NewRollout{Ref: ref, Kind: kind, Target: target})
}

// CreateRollout records a rollout as running, with its targets.
func (c *Catalog) CreateRollout(ctx context.Context, nr NewRollout) (Rollout, error) {
	if strings.TrimSpace(nr.Target) == "" || nr.Kind == "" {
		return Rollout{}, fmt.Errorf("%w: a rollout needs a kind and a target", ErrInvalid)
	}
	if len(nr.Policy) > 0 && !json.Valid(nr.Policy) {
		return Rollout{}, fmt.Errorf("%w: rollout policy is not JSON", ErrInvalid)
	}
	r := Rollout{Ref: nr.Ref, Kind: nr.Kind, Target: nr.Target, Channel: nr.Channel, Previous: nr.Previous, RollbackOf: nr.RollbackOf,
		Policy: nr.Policy, State: RolloutRunning, StartedAt: c.now().UTC(), Members: []RolloutMember{}, Targets: []RolloutTarget{}}
	r.UpdatedAt = r.StartedAt
	err := c.tx(ctx, func(tx *sql.Tx) error {
		vid, err := c.versionID(ctx, tx, nr.Ref)
		if err != nil {
			return err
		}
		if err := tx.QueryRowContext(ctx, c.q(`INSERT INTO rollouts (version_id, kind, target, state, started_at, updated_at, channel, previous, policy, rollback_of)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), vid, nr.Kind, nr.Target, r.State, fmtTime(r.StartedAt), fmtTime(r.UpdatedAt),
			nr.Channel, nr.Previous, string(nr.Policy), nr.RollbackOf).Scan(&r.ID); err != nil {
			return err
		}
		for _, t := range nr.Targets {
			if t.State == "" {
				t.State = RolloutRunning
			}
			t.UpdatedAt = r.StartedAt
			r.Targets = append(r.Targets, t)
		}
		if err := c.putTargets(ctx, tx, r.ID, r.Targets); err != nil {
			return err
		}
		if nr.Event == nil {
			return c.emitRolloutTx(ctx, tx, r.ID, r.State, "started", nil) // events.go
		}
		if nr.Event.N != 1 {
			return fmt.Errorf("%w: the first event of a rollout is step 1, not %d", ErrInvalid, nr.Event.N)
		}
		if _, err := tx.ExecContext(ctx, c.q("UPDATE rollouts SET steps = 1 WHERE id = ?"), r.ID); err != nil {
			return err
		}
		r.Steps = 1
		return c.emitStepTx(ctx, tx, r.ID, nr.Ref, *nr.Event)
	})
	if err != nil {
		return Rollout{}, fmt.Errorf("record rollout of %s to %s: %w", nr.Ref, nr.Target, err)
	}
	return r, nil
}

// UpdateRollout replaces the members' state and sets the rollout's state
// and detail; a state other than running or paused finishes it.
func (c *Catalog) UpdateRollout(ctx context.Context, id int64, state, detail string, members []RolloutMember) error {
	return c.SaveRollout(ctx, id, RolloutSave{State: state, Detail: detail, Members: members, KeepTargets: true})
}

// RolloutSave is the new state of a rollout.
type RolloutSave struct {
	State  string
	Detail string
	// Events are the steps this save records, numbered on from the steps
	// recorded (else ErrConflict: another writer advanced the rollout),
	// emitted with the record. Without events, the save is one step whose
	// id is the digest of the state, detail and members (a save that
	// repeats the last one emits nothing).
	Events  []RolloutEvent
	Targets []RolloutTarget
	// KeepTargets leaves the recorded targets as they are (Targets ignored).
	KeepTargets bool
	Members     []RolloutMember
	// From, when set, is the state the rollout must be in (else ErrConflict):
	// a pause or resume that raced another writer fails instead of undoing it.
	From string
}

// SaveRollout replaces a rollout's targets and members and sets its state.
// A finished rollout (completed, failed, rolled back) is not changed again.
func (c *Catalog) SaveRollout(ctx context.Context, id int64, s RolloutSave) error {
	switch s.State {
	case RolloutRunning, RolloutPaused, RolloutCompleted, RolloutFailed, RolloutRolledBack, RolloutSuperseded:
	default:
		return fmt.Errorf("%w: rollout state %q (want running, paused, completed, failed, rolled_back or superseded)", ErrInvalid, s.State)
	}
	t := c.nowText()
	finished := ""
	if s.State != RolloutRunning && s.State != RolloutPaused {
		finished = t
	}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		var cur string
		var steps int
		if err := tx.QueryRowContext(ctx, c.q("SELECT state, steps FROM rollouts WHERE id = ?"), id).Scan(&cur, &steps); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: rollout %d", ErrNotFound, id)
			}
			return err
		}
		if cur != RolloutRunning && cur != RolloutPaused {
			return fmt.Errorf("%w: rollout %d is already %s", ErrConflict, id, cur)
		}
		if s.From != "" && cur != s.From {
			return fmt.Errorf("%w: rollout %d is %s, not %s", ErrConflict, id, cur, s.From)
		}
		if len(s.Events) > 0 && s.Events[0].N != steps+1 {
			return fmt.Errorf("%w: rollout %d has %d steps recorded; this save starts at step %d (another writer advanced it: read it again)", ErrConflict, id, steps, s.Events[0].N)
		}
		for i, e := range s.Events {
			if e.N != steps+1+i {
				return fmt.Errorf("%w: rollout %d: steps out of order (%d after %d)", ErrInvalid, id, e.N, steps+i)
			}
		}
		steps += len(s.Events)
		if _, err := tx.ExecContext(ctx, c.q("UPDATE rollouts SET state = ?, detail = ?, updated_at = ?, finished_at = ?, steps = ? WHERE id = ?"),
			s.State, s.Detail, t, finished, steps, id); err != nil {
			return err
		}
		if !s.KeepTargets {
			if _, err := tx.ExecContext(ctx, c.q("DELETE FROM rollout_targets WHERE rollout_id = ?"), id); err != nil {
				return err
			}
			ts := slices.Clone(s.Targets)
			for i := range ts {
				ts[i].UpdatedAt = parseTime(t)
			}
			if err := c.putTargets(ctx, tx, id, ts); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, c.q("DELETE FROM rollout_members WHERE rollout_id = ?"), id); err != nil {
			return err
		}
		for _, m := range s.Members {
			if _, err := tx.ExecContext(ctx, c.q("INSERT INTO rollout_members (rollout_id, member, version, state, healthy, updated_at, target, plan) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
				id, m.Member, m.Version, m.State, boolInt(m.Healthy), t, m.Target, m.Plan); err != nil {
				return err
			}
		}
		if len(s.Events) == 0 {
			return c.emitRolloutTx(ctx, tx, id, s.State, s.Detail, s.Members) // events.go
		}
		var ref Ref
		if err := tx.QueryRowContext(ctx, c.q(`SELECT v.version, i.name FROM rollouts r JOIN versions v ON v.id = r.version_id
			JOIN images i ON i.id = v.image_id WHERE r.id = ?`), id).Scan(&ref.Version, &ref.Image); err != nil {
			return err
		}
		for _, e := range s.Events {
			if err := c.emitStepTx(ctx, tx, id, ref, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update rollout %d: %w", id, err)
	}
	return nil
}

// emitStepTx queues step e of rollout id (events.go delivers it).
func (c *Catalog) emitStepTx(ctx context.Context, tx *sql.Tx, id int64, ref Ref, e RolloutEvent) error {
	if s, ok := e.Data.(interface{ SetRolloutID(int64) }); ok {
		s.SetRolloutID(id)
	}
	return c.emitTx(ctx, tx, fmt.Sprintf("rollout-%d-step-%d", id, e.N), EventRollout, ref.String(), e.Data)
}

func (c *Catalog) putTargets(ctx context.Context, tx *sql.Tx, id int64, ts []RolloutTarget) error {
	for _, t := range ts {
		if t.Target == "" || t.Kind == "" {
			return fmt.Errorf("%w: a rollout target needs a name and a kind", ErrInvalid)
		}
		if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO rollout_targets (rollout_id, target, kind, state, detail, mode, batch, next_at, upgrade_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`), id, t.Target, t.Kind, t.State, t.Detail, t.Mode, t.Batch, fmtTime(t.NextAt), fmtTime(t.UpgradeAt), fmtTime(t.UpdatedAt)); err != nil {
			return fmt.Errorf("record rollout target %s: %w", t.Target, err)
		}
	}
	return nil
}

// Rollouts lists the rollouts of an image (all images when image is ""),
// newest first, with their members; at most limit (0: 50).
func (c *Catalog) Rollouts(ctx context.Context, image string, limit int) ([]Rollout, error) {
	if limit <= 0 {
		limit = 50
	}
	q := `SELECT ` + rolloutCols + `
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
	rs, err := c.rollouts(ctx, `SELECT `+rolloutCols+`
		FROM rollouts r JOIN versions v ON v.id = r.version_id JOIN images i ON i.id = v.image_id WHERE r.id = ?`, id)
	if err != nil {
		return Rollout{}, err
	}
	if len(rs) == 0 {
		return Rollout{}, fmt.Errorf("%w: rollout %d", ErrNotFound, id)
	}
	return rs[0], nil
}

const rolloutCols = "r.id, i.name, v.version, r.kind, r.target, r.state, r.detail, r.started_at, r.updated_at, r.finished_at, r.channel, r.previous, r.policy, r.steps, r.rollback_of"

func (c *Catalog) rollouts(ctx context.Context, query string, args ...any) ([]Rollout, error) {
	rows, err := c.db.QueryContext(ctx, c.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	var out []Rollout
	for rows.Next() {
		var r Rollout
		var started, updated, finished, policy string
		if err := rows.Scan(&r.ID, &r.Ref.Image, &r.Ref.Version, &r.Kind, &r.Target, &r.State, &r.Detail, &started, &updated, &finished,
			&r.Channel, &r.Previous, &policy, &r.Steps, &r.RollbackOf); err != nil {
			rows.Close()
			return nil, err
		}
		if policy != "" {
			r.Policy = json.RawMessage(policy)
		}
		r.StartedAt, r.UpdatedAt, r.FinishedAt = parseTime(started), parseTime(updated), parseTime(finished)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].Targets, err = c.rolloutTargets(ctx, out[i].ID); err != nil {
			return nil, err
		}
		ms, err := c.db.QueryContext(ctx, c.q("SELECT member, version, state, healthy, updated_at, target, plan FROM rollout_members WHERE rollout_id = ?"), out[i].ID)
		if err != nil {
			return nil, err
		}
		out[i].Members = []RolloutMember{}
		for ms.Next() {
			var m RolloutMember
			var healthy int
			var at string
			if err := ms.Scan(&m.Member, &m.Version, &m.State, &healthy, &at, &m.Target, &m.Plan); err != nil {
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

func (c *Catalog) rolloutTargets(ctx context.Context, id int64) ([]RolloutTarget, error) {
	rows, err := c.db.QueryContext(ctx, c.q("SELECT target, kind, state, detail, mode, batch, next_at, upgrade_at, updated_at FROM rollout_targets WHERE rollout_id = ? ORDER BY target"), id)
	if err != nil {
		return nil, fmt.Errorf("list rollout targets: %w", err)
	}
	defer rows.Close()
	out := []RolloutTarget{}
	for rows.Next() {
		var t RolloutTarget
		var next, up, at string
		if err := rows.Scan(&t.Target, &t.Kind, &t.State, &t.Detail, &t.Mode, &t.Batch, &next, &up, &at); err != nil {
			return nil, err
		}
		t.NextAt, t.UpgradeAt, t.UpdatedAt = parseTime(next), parseTime(up), parseTime(at)
		out = append(out, t)
	}
	return out, rows.Err()
}

// sortMembers orders members numerically when they are instance ids.
func sortMembers(ms []RolloutMember) {
	slices.SortFunc(ms, func(a, b RolloutMember) int {
		if a.Target != b.Target {
			return strings.Compare(a.Target, b.Target)
		}
		if len(a.Member) != len(b.Member) {
			return len(a.Member) - len(b.Member)
		}
		return strings.Compare(a.Member, b.Member)
	})
}
