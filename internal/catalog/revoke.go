package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// RevokeRequest asks to revoke a version (and, with Cascade, every version
// built on it, transitively, across images).
type RevokeRequest struct {
	Ref
	Reason  string
	By      string
	Cascade bool
}

// What must change outside the catalog for a revoked copy.
const (
	// ActionExcludeFromLatest: set excludeFromLatest on the gallery image
	// version and tag it revoked (with the reason).
	ActionExcludeFromLatest = "exclude-from-latest-and-tag"
	// ActionMarkOnprem: mark the version revoked in the on-prem library
	// (metadata and channel pointers).
	ActionMarkOnprem = "mark-revoked-in-library"
)

// RevokeAction is one change a revocation needs outside the catalog.
type RevokeAction struct {
	Ref    Ref    `json:"ref"`
	Action string `json:"action"`
	Reason string `json:"reason"`
	Copy   Copy   `json:"copy"`
}

// RevokeResult says what the revocation changed and what still has to change.
type RevokeResult struct {
	Revoked        []Ref          `json:"revoked"`
	AlreadyRevoked []Ref          `json:"already_revoked,omitempty"`
	Actions        []RevokeAction `json:"actions"`
	Hosts          []Host         `json:"hosts,omitempty"`       // machines running a revoked version
	Channels       []Channel      `json:"channels,omitempty"`    // channels still pointing at a revoked version
	Descendants    []Ref          `json:"descendants,omitempty"` // not revoked (no cascade): now outdated
}

// Revoker performs the outside side of a revocation (the Azure gallery, the
// on-prem library). Implementations live in internal/azure and internal/onprem.
type Revoker interface {
	RevokeCopy(ctx context.Context, a RevokeAction) error
}

// Revoke marks a version revoked, with reason, who and when; with Cascade
// also its descendants. It changes nothing outside the catalog: the result
// lists the actions to perform (see ApplyRevocation), the hosts that run a
// revoked version and the channels that point at one.
func (c *Catalog) Revoke(ctx context.Context, req RevokeRequest) (*RevokeResult, error) {
	if strings.TrimSpace(req.Reason) == "" {
		return nil, fmt.Errorf("%w: a revocation needs a reason (--reason)", ErrInvalid)
	}
	if strings.TrimSpace(req.By) == "" {
		return nil, fmt.Errorf("%w: a revocation must say who made it", ErrInvalid)
	}
	res := &RevokeResult{}
	var revokedIDs []int64
	err := c.tx(ctx, func(tx *sql.Tx) error {
		rootID, err := c.versionID(ctx, tx, req.Ref)
		if err != nil {
			return err
		}
		type item struct {
			id  int64
			ref Ref
		}
		targets := []item{{rootID, req.Ref}}
		desc, err := c.descendants(ctx, tx, rootID)
		if err != nil {
			return err
		}
		if req.Cascade {
			for _, d := range desc {
				targets = append(targets, item{d.id, d.ref})
			}
		}
		now := c.nowText()
		for i, t := range targets {
			var status string
			if err := tx.QueryRowContext(ctx, c.q("SELECT status FROM versions WHERE id = ?"), t.id).Scan(&status); err != nil {
				return err
			}
			if status == StatusRevoked {
				res.AlreadyRevoked = append(res.AlreadyRevoked, t.ref)
				continue
			}
			if status == StatusDeleted {
				continue
			}
			var cause sql.NullInt64
			if i > 0 {
				cause = sql.NullInt64{Int64: rootID, Valid: true}
			}
			if _, err := tx.ExecContext(ctx, c.q("UPDATE versions SET status = 'revoked' WHERE id = ?"), t.id); err != nil {
				return fmt.Errorf("revoke %s: %w", t.ref, err)
			}
			if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO revocations (version_id, reason, revoked_by, revoked_at, cascade_requested, cause_version_id)
				VALUES (?, ?, ?, ?, ?, ?)`), t.id, req.Reason, req.By, now, boolInt(req.Cascade), cause); err != nil {
				return fmt.Errorf("record revocation of %s: %w", t.ref, err)
			}
			res.Revoked = append(res.Revoked, t.ref)
			revokedIDs = append(revokedIDs, t.id)
		}
		if !req.Cascade {
			for _, d := range desc {
				res.Descendants = append(res.Descendants, d.ref)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	all := append(append([]Ref{}, res.Revoked...), res.AlreadyRevoked...)
	for _, ref := range all {
		cps, err := c.Copies(ctx, ref)
		if err != nil {
			return nil, err
		}
		for _, cp := range cps {
			if cp.State == StateDeleted || cp.State == StateRevoked {
				continue
			}
			switch cp.Kind {
			case KindGalleryVersion:
				res.Actions = append(res.Actions, RevokeAction{Ref: ref, Action: ActionExcludeFromLatest, Reason: req.Reason, Copy: cp})
			case KindOnprem:
				res.Actions = append(res.Actions, RevokeAction{Ref: ref, Action: ActionMarkOnprem, Reason: req.Reason, Copy: cp})
			}
		}
		hosts, err := c.HostsRunning(ctx, ref)
		if err != nil {
			return nil, err
		}
		res.Hosts = append(res.Hosts, hosts...)
		chs, err := c.Channels(ctx, ref.Image)
		if err != nil {
			return nil, err
		}
		for _, ch := range chs {
			if ch.Version == ref.Version {
				res.Channels = append(res.Channels, ch)
			}
		}
	}
	return res, nil
}

type descendant struct {
	id  int64
	ref Ref
}

// descendants walks the ancestry downwards (breadth first, across images).
func (c *Catalog) descendants(ctx context.Context, q querier, id int64) ([]descendant, error) {
	var out []descendant
	seen := map[int64]bool{id: true}
	frontier := []int64{id}
	for len(frontier) > 0 {
		var next []int64
		for _, pid := range frontier {
			rows, err := q.QueryContext(ctx, c.q(`SELECT v.id, i.name, v.version FROM versions v JOIN images i ON i.id = v.image_id
				WHERE v.parent_version_id = ? ORDER BY v.id`), pid)
			if err != nil {
				return nil, fmt.Errorf("walk descendants: %w", err)
			}
			for rows.Next() {
				var d descendant
				if err := rows.Scan(&d.id, &d.ref.Image, &d.ref.Version); err != nil {
					rows.Close()
					return nil, err
				}
				if !seen[d.id] {
					seen[d.id] = true
					out = append(out, d)
					next = append(next, d.id)
				}
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return nil, err
			}
		}
		frontier = next
	}
	return out, nil
}

// ApplyRevocation performs the result's actions through r and marks each
// copy Revoked in the catalog once its action succeeded. Every failure is
// reported (joined); successful actions are not repeated on a re-run because
// their copies are then in state Revoked.
func (c *Catalog) ApplyRevocation(ctx context.Context, res *RevokeResult, r Revoker) error {
	var errs []error
	for _, a := range res.Actions {
		if err := r.RevokeCopy(ctx, a); err != nil {
			errs = append(errs, fmt.Errorf("%s %s copy %s: %w", a.Action, a.Copy.Kind, a.Copy.ResourceID, err))
			continue
		}
		if err := c.SetCopyState(ctx, a.Copy.ID, StateRevoked); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
