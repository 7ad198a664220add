package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// DefaultRequirementsImage is the pseudo image whose channel requirements
// apply to every image that has none of its own for that channel.
const DefaultRequirementsImage = "*"

// Channels lists an image's channels.
func (c *Catalog) Channels(ctx context.Context, image string) ([]Channel, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT ch.name, COALESCE(v.version, ''), ch.updated_at
		FROM channels ch JOIN images i ON i.id = ch.image_id LEFT JOIN versions v ON v.id = ch.version_id
		WHERE i.name = ? ORDER BY ch.name`), image)
	if err != nil {
		return nil, fmt.Errorf("list channels of %s: %w", image, err)
	}
	defer rows.Close()
	var out []Channel
	for rows.Next() {
		ch := Channel{Image: image}
		var updated string
		if err := rows.Scan(&ch.Name, &ch.Version, &updated); err != nil {
			return nil, err
		}
		ch.UpdatedAt = parseTime(updated)
		out = append(out, ch)
	}
	return out, rows.Err()
}

// Requirements returns what a version needs before channel may point at it:
// the image's own rows for the channel, else the defaults ('*'). A channel
// with neither has no requirements.
func (c *Catalog) Requirements(ctx context.Context, image, channel string) ([]Requirement, error) {
	return c.requirements(ctx, c.db, image, channel)
}

func (c *Catalog) requirements(ctx context.Context, q querier, image, channel string) ([]Requirement, error) {
	for _, img := range []string{image, DefaultRequirementsImage} {
		rows, err := q.QueryContext(ctx, c.q("SELECT kind, state FROM channel_requirements WHERE image = ? AND channel = ? ORDER BY kind"), img, channel)
		if err != nil {
			return nil, fmt.Errorf("read requirements of channel %s: %w", channel, err)
		}
		var out []Requirement
		for rows.Next() {
			var r Requirement
			var kind string
			if err := rows.Scan(&kind, &r.State); err != nil {
				rows.Close()
				return nil, err
			}
			r.Kind = CopyKind(kind)
			out = append(out, r)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		if len(out) > 0 {
			return out, nil
		}
	}
	return nil, nil
}

// SetRequirements replaces what channel needs for image (image "*" sets the
// default for every image). An empty list for an image removes its own rows,
// so the defaults apply again.
func (c *Catalog) SetRequirements(ctx context.Context, image, channel string, reqs []Requirement) error {
	if image != DefaultRequirementsImage {
		if err := ValidateImageName(image); err != nil {
			return err
		}
	}
	if err := validateChannelName(channel); err != nil {
		return err
	}
	for _, r := range reqs {
		if !validKind(r.Kind) {
			return fmt.Errorf("%w: requirement kind %q: use one of %v", ErrInvalid, r.Kind, Kinds)
		}
	}
	return c.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, c.q("DELETE FROM channel_requirements WHERE image = ? AND channel = ?"), image, channel); err != nil {
			return fmt.Errorf("set requirements of channel %s: %w", channel, err)
		}
		for _, r := range reqs {
			if _, err := tx.ExecContext(ctx, c.q(`INSERT INTO channel_requirements (image, channel, kind, state) VALUES (?, ?, ?, ?)
				ON CONFLICT (image, channel, kind) DO UPDATE SET state = excluded.state`), image, channel, string(r.Kind), r.State); err != nil {
				return fmt.Errorf("set requirements of channel %s: %w", channel, err)
			}
		}
		return nil
	})
}

// satisfies reports whether a copy in the list meets r.
func satisfies(cps []Copy, r Requirement) bool {
	for _, cp := range cps {
		if cp.Kind != r.Kind {
			continue
		}
		if r.State != "" {
			if strings.EqualFold(cp.State, r.State) {
				return true
			}
			continue
		}
		switch cp.State {
		case StateFailed, StateDeleted, StateRevoked:
			continue
		}
		return true
	}
	return false
}

// PromoteRequest asks to move a channel to a version.
type PromoteRequest struct {
	Ref
	Channel string
	By      string
	// Rules, when not nil, are the channel's requirements as the pipeline
	// file declares them: they replace the catalog's (Requirements) for
	// this promotion, and an empty Require list requires nothing.
	Rules *ChannelRules
}

// ChannelRules are a channel's requirements declared outside the catalog.
type ChannelRules struct {
	Require []Requirement
	Source  string // where they are declared (file:line), named in a refusal
}

// Promote moves a channel of an image to a version: only forward (a newer
// version by SemVer than the one the channel points at), never to a revoked
// or deleted version, and only when the version has every copy the channel
// requires. Promoting to the version the channel already points at is a
// recorded no-op (Promotion.NoOp). The move is recorded with who and when.
func (c *Catalog) Promote(ctx context.Context, req PromoteRequest) (Promotion, error) {
	if err := validateChannelName(req.Channel); err != nil {
		return Promotion{}, err
	}
	if strings.TrimSpace(req.By) == "" {
		return Promotion{}, fmt.Errorf("%w: a promotion must say who made it", ErrInvalid)
	}
	p := Promotion{Image: req.Image, Channel: req.Channel, To: req.Version, By: req.By}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		imageID, err := c.imageID(ctx, tx, req.Image)
		if err != nil {
			return err
		}
		vid, err := c.versionID(ctx, tx, req.Ref)
		if err != nil {
			return err
		}
		var status string
		if err := tx.QueryRowContext(ctx, c.q("SELECT status FROM versions WHERE id = ?"), vid).Scan(&status); err != nil {
			return err
		}
		switch status {
		case StatusRevoked:
			return fmt.Errorf("%w: %s cannot be promoted to %s", ErrRevoked, req.Ref, req.Channel)
		case StatusDeleted:
			return fmt.Errorf("%w: %s was deleted by retention and cannot be promoted", ErrInvalid, req.Ref)
		}
		var chID sql.NullInt64
		var curID sql.NullInt64
		var cur sql.NullString
		err = tx.QueryRowContext(ctx, c.q(`SELECT ch.id, ch.version_id, v.version FROM channels ch LEFT JOIN versions v ON v.id = ch.version_id
			WHERE ch.image_id = ? AND ch.name = ?`), imageID, req.Channel).Scan(&chID, &curID, &cur)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("read channel %s: %w", req.Channel, err)
		}
		if cur.Valid {
			p.From = cur.String
			if curID.Int64 == vid {
				p.NoOp = true
				return nil
			}
			if CompareVersions(req.Version, cur.String) <= 0 {
				return fmt.Errorf("%w: %s of %s is at %s; %s is not newer (promote a newer version, or revoke %s)",
					ErrNotForward, req.Channel, req.Image, cur.String, req.Version, cur.String)
			}
		}
		reqs, from := []Requirement(nil), "the catalog's requirements of "+req.Channel
		if req.Rules != nil {
			reqs, from = req.Rules.Require, req.Rules.Source
		} else if reqs, err = c.requirements(ctx, tx, req.Image, req.Channel); err != nil {
			return err
		}
		if len(reqs) > 0 {
			cps, err := c.queryCopies(ctx, tx, "c.version_id = ?", vid)
			if err != nil {
				return err
			}
			var missing []string
			for _, r := range reqs {
				if r.Kind == KindTested {
					why, err := c.testedRequirement(ctx, tx, req.Ref, vid)
					if err != nil {
						return err
					}
					if why != "" {
						missing = append(missing, why)
					}
					continue
				}
				if !satisfies(cps, r) {
					s := "a " + string(r.Kind) + " copy"
					if r.State != "" {
						s += " in state " + r.State
					}
					missing = append(missing, s)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("%w: %s needs %s before it can go to %s (required by %s; publish or test it first, or declare the channel's requirements in the pipeline file: channel %q { requires = [...] })",
					ErrRequirement, req.Ref, strings.Join(missing, " and "), req.Channel, from, req.Channel)
			}
		}
		now := c.nowText()
		if !chID.Valid {
			err = tx.QueryRowContext(ctx, c.q("INSERT INTO channels (image_id, name, version_id, updated_at) VALUES (?, ?, ?, ?) RETURNING id"),
				imageID, req.Channel, vid, now).Scan(&chID)
		} else {
			_, err = tx.ExecContext(ctx, c.q("UPDATE channels SET version_id = ?, updated_at = ? WHERE id = ?"), vid, now, chID.Int64)
		}
		if err != nil {
			return fmt.Errorf("move channel %s: %w", req.Channel, err)
		}
		var pid int64
		if err := tx.QueryRowContext(ctx, c.q(`INSERT INTO promotions (channel_id, from_version_id, to_version_id, promoted_by, promoted_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`), chID.Int64, curID, vid, req.By, now).Scan(&pid); err != nil {
			return fmt.Errorf("record promotion: %w", err)
		}
		p.At = parseTime(now)
		return c.emitPromotionTx(ctx, tx, pid, p) // events.go
	})
	if err != nil {
		return Promotion{}, err
	}
	return p, nil
}

// Promotions lists the recorded moves of an image's channels (all channels
// when channel is empty), oldest first.
func (c *Catalog) Promotions(ctx context.Context, image, channel string) ([]Promotion, error) {
	query := `SELECT ch.name, COALESCE(fv.version, ''), tv.version, p.promoted_by, p.promoted_at
		FROM promotions p JOIN channels ch ON ch.id = p.channel_id JOIN images i ON i.id = ch.image_id
		LEFT JOIN versions fv ON fv.id = p.from_version_id JOIN versions tv ON tv.id = p.to_version_id
		WHERE i.name = ?`
	args := []any{image}
	if channel != "" {
		query += " AND ch.name = ?"
		args = append(args, channel)
	}
	rows, err := c.db.QueryContext(ctx, c.q(query+" ORDER BY p.id"), args...)
	if err != nil {
		return nil, fmt.Errorf("list promotions of %s: %w", image, err)
	}
	defer rows.Close()
	var out []Promotion
	for rows.Next() {
		p := Promotion{Image: image}
		var at string
		if err := rows.Scan(&p.Channel, &p.From, &p.To, &p.By, &at); err != nil {
			return nil, err
		}
		p.At = parseTime(at)
		out = append(out, p)
	}
	return out, rows.Err()
}
