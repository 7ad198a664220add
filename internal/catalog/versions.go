package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

const maxNameLen = 80

// ValidateImageName checks an image name: 1-80 letters, digits, '.', '-' or
// '_' (the characters an Azure gallery image definition accepts).
func ValidateImageName(name string) error {
	if name == "" || len(name) > maxNameLen {
		return fmt.Errorf("%w: image name %q must be 1-%d characters", ErrInvalid, name, maxNameLen)
	}
	for i := 0; i < len(name); i++ {
		ch := name[i]
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch == '.' || ch == '-' || ch == '_') {
			return fmt.Errorf("%w: image name %q: only letters, digits, '.', '-' and '_' are allowed", ErrInvalid, name)
		}
	}
	return nil
}

func validateChannelName(name string) error {
	if err := ValidateImageName(name); err != nil {
		return fmt.Errorf("%w: channel name %q: use letters, digits, '.', '-' or '_'", ErrInvalid, name)
	}
	if name == "*" {
		return fmt.Errorf("%w: channel name %q is reserved", ErrInvalid, name)
	}
	return nil
}

func (c *Catalog) ensureImage(ctx context.Context, q querier, name string) (int64, error) {
	if err := ValidateImageName(name); err != nil {
		return 0, err
	}
	if _, err := q.ExecContext(ctx, c.q("INSERT INTO images (name, created_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING"), name, c.nowText()); err != nil {
		return 0, fmt.Errorf("record image %s: %w", name, err)
	}
	return c.imageID(ctx, q, name)
}

func (c *Catalog) imageID(ctx context.Context, q querier, name string) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, c.q("SELECT id FROM images WHERE name = ?"), name).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: image %q is not in the catalog (imgpipe images lists them)", ErrNotFound, name)
	}
	if err != nil {
		return 0, fmt.Errorf("look up image %s: %w", name, err)
	}
	return id, nil
}

// EnsureImage records an image name (no-op when it exists).
func (c *Catalog) EnsureImage(ctx context.Context, name string) error {
	_, err := c.ensureImage(ctx, c.db, name)
	return err
}

// Images lists every image with its version count, newest version and channels.
func (c *Catalog) Images(ctx context.Context) ([]Image, error) {
	rows, err := c.db.QueryContext(ctx, `SELECT i.id, i.name, i.created_at, COUNT(v.id)
		FROM images i LEFT JOIN versions v ON v.image_id = i.id AND v.status <> 'deleted'
		GROUP BY i.id, i.name, i.created_at ORDER BY i.name`)
	if err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	type row struct {
		id  int64
		img Image
	}
	var list []row
	for rows.Next() {
		var r row
		var created string
		if err := rows.Scan(&r.id, &r.img.Name, &created, &r.img.Versions); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list images: %w", err)
		}
		r.img.CreatedAt = parseTime(created)
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list images: %w", err)
	}
	out := make([]Image, 0, len(list))
	for _, r := range list {
		vs, err := c.versionStrings(ctx, c.db, r.id, false)
		if err != nil {
			return nil, err
		}
		if len(vs) > 0 {
			r.img.Latest = vs[len(vs)-1]
		}
		chs, err := c.Channels(ctx, r.img.Name)
		if err != nil {
			return nil, err
		}
		for _, ch := range chs {
			if r.img.Channels == nil {
				r.img.Channels = map[string]string{}
			}
			r.img.Channels[ch.Name] = ch.Version
		}
		out = append(out, r.img)
	}
	return out, nil
}

// versionStrings returns an image's version strings in SemVer order, oldest
// first, leaving out deleted (and, unless withRevoked, revoked) versions.
func (c *Catalog) versionStrings(ctx context.Context, q querier, imageID int64, withRevoked bool) ([]string, error) {
	query := "SELECT version FROM versions WHERE image_id = ? AND status <> 'deleted'"
	if !withRevoked {
		query += " AND status <> 'revoked'"
	}
	rows, err := q.QueryContext(ctx, c.q(query), imageID)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return CompareVersions(out[i], out[j]) < 0 })
	return out, rows.Err()
}

// AddVersion records a newly built version. Recording the same version again
// with the same artifact checksum returns the existing record (a re-run);
// with a different checksum it is ErrConflict: versions are immutable.
func (c *Catalog) AddVersion(ctx context.Context, nv NewVersion) (Version, error) {
	if _, err := ParseVersion(nv.Version); err != nil {
		return Version{}, err
	}
	for k := range nv.Tags {
		if k == "" || len(k) > 256 {
			return Version{}, fmt.Errorf("%w: tag keys must be 1-256 characters", ErrInvalid)
		}
	}
	err := c.tx(ctx, func(tx *sql.Tx) error {
		imageID, err := c.ensureImage(ctx, tx, nv.Image)
		if err != nil {
			return err
		}
		var existingID int64
		var existingSHA string
		err = tx.QueryRowContext(ctx, c.q("SELECT id, artifact_sha256 FROM versions WHERE image_id = ? AND version = ?"),
			imageID, nv.Version).Scan(&existingID, &existingSHA)
		if err == nil {
			if existingSHA != nv.ArtifactSHA256 {
				return fmt.Errorf("%w: %s@%s is already recorded with artifact SHA-256 %q, not %q: versions are immutable, bump the version",
					ErrConflict, nv.Image, nv.Version, existingSHA, nv.ArtifactSHA256)
			}
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("look up %s@%s: %w", nv.Image, nv.Version, err)
		}
		var parentID sql.NullInt64
		if nv.Parent != nil {
			id, err := c.versionID(ctx, tx, *nv.Parent)
			if err != nil {
				return fmt.Errorf("parent of %s@%s: %w", nv.Image, nv.Version, err)
			}
			parentID = sql.NullInt64{Int64: id, Valid: true}
		}
		var id int64
		err = tx.QueryRowContext(ctx, c.q(`INSERT INTO versions (image_id, version, status, git_commit, template_hash,
			packer_version, build_id, build_time, artifact_sha256, hyperv_generation, os_type, parent_version_id, created_at)
			VALUES (?, ?, 'active', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`),
			imageID, nv.Version, nv.GitCommit, nv.TemplateHash, nv.PackerVersion, nv.BuildID, fmtTime(nv.BuildTime),
			nv.ArtifactSHA256, nv.HyperVGeneration, nv.OSType, parentID, c.nowText()).Scan(&id)
		if err != nil {
			return fmt.Errorf("record %s@%s: %w", nv.Image, nv.Version, err)
		}
		return c.setTags(ctx, tx, id, nv.Tags)
	})
	if err != nil {
		return Version{}, err
	}
	return c.Version(ctx, Ref{Image: nv.Image, Version: nv.Version})
}

func (c *Catalog) setTags(ctx context.Context, q querier, versionID int64, tags map[string]string) error {
	for k, v := range tags {
		if _, err := q.ExecContext(ctx, c.q(`INSERT INTO version_tags (version_id, key, value) VALUES (?, ?, ?)
			ON CONFLICT (version_id, key) DO UPDATE SET value = excluded.value`), versionID, k, v); err != nil {
			return fmt.Errorf("set tag %s: %w", k, err)
		}
	}
	return nil
}

// SetTags adds or changes tags on a version (retention exclusions use them).
func (c *Catalog) SetTags(ctx context.Context, ref Ref, tags map[string]string) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		id, err := c.versionID(ctx, tx, ref)
		if err != nil {
			return err
		}
		return c.setTags(ctx, tx, id, tags)
	})
}

func (c *Catalog) versionID(ctx context.Context, q querier, ref Ref) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, c.q(`SELECT v.id FROM versions v JOIN images i ON i.id = v.image_id
		WHERE i.name = ? AND v.version = ?`), ref.Image, ref.Version).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("%w: %s is not in the catalog (imgpipe versions %s lists them)", ErrNotFound, ref, ref.Image)
	}
	if err != nil {
		return 0, fmt.Errorf("look up %s: %w", ref, err)
	}
	return id, nil
}

const versionColumns = `v.id, i.name, v.version, v.status, v.git_commit, v.template_hash, v.packer_version, v.build_id,
	v.build_time, v.artifact_sha256, v.hyperv_generation, v.os_type, v.created_at, v.deprecated_at, v.end_of_life,
	pi.name, pv.version, r.reason, r.revoked_by, r.revoked_at, r.cascade_requested, ci.name, cv.version
	FROM versions v JOIN images i ON i.id = v.image_id
	LEFT JOIN versions pv ON pv.id = v.parent_version_id LEFT JOIN images pi ON pi.id = pv.image_id
	LEFT JOIN revocations r ON r.version_id = v.id
	LEFT JOIN versions cv ON cv.id = r.cause_version_id LEFT JOIN images ci ON ci.id = cv.image_id`

func scanVersion(s interface{ Scan(...any) error }) (Version, error) {
	var v Version
	var buildTime, created, deprecated, eol string
	var pImage, pVersion, rReason, rBy, rAt, cImage, cVersion sql.NullString
	var rCascade sql.NullInt64
	err := s.Scan(&v.ID, &v.Image, &v.Version, &v.Status, &v.GitCommit, &v.TemplateHash, &v.PackerVersion, &v.BuildID,
		&buildTime, &v.ArtifactSHA256, &v.HyperVGeneration, &v.OSType, &created, &deprecated, &eol,
		&pImage, &pVersion, &rReason, &rBy, &rAt, &rCascade, &cImage, &cVersion)
	if err != nil {
		return v, err
	}
	v.BuildTime, v.CreatedAt, v.DeprecatedAt, v.EndOfLife = parseTime(buildTime), parseTime(created), parseTime(deprecated), parseTime(eol)
	if pImage.Valid {
		v.Parent = &Ref{Image: pImage.String, Version: pVersion.String}
	}
	if rReason.Valid {
		v.Revocation = &Revocation{Reason: rReason.String, By: rBy.String, At: parseTime(rAt.String), Cascade: rCascade.Int64 != 0}
		if cImage.Valid {
			v.Revocation.Cause = &Ref{Image: cImage.String, Version: cVersion.String}
		}
	}
	return v, nil
}

// Version returns one version with its tags, channels, revocation and
// whether it is outdated.
func (c *Catalog) Version(ctx context.Context, ref Ref) (Version, error) {
	v, err := scanVersion(c.db.QueryRowContext(ctx, c.q("SELECT "+versionColumns+" WHERE i.name = ? AND v.version = ?"), ref.Image, ref.Version))
	if errors.Is(err, sql.ErrNoRows) {
		return Version{}, fmt.Errorf("%w: %s is not in the catalog (imgpipe versions %s lists them)", ErrNotFound, ref, ref.Image)
	}
	if err != nil {
		return Version{}, fmt.Errorf("read %s: %w", ref, err)
	}
	if err := c.decorate(ctx, &v); err != nil {
		return Version{}, err
	}
	return v, nil
}

// Versions lists an image's versions, newest first (SemVer order).
func (c *Catalog) Versions(ctx context.Context, image string) ([]Version, error) {
	if _, err := c.imageID(ctx, c.db, image); err != nil {
		return nil, err
	}
	vs, err := c.queryVersions(ctx, "i.name = ?", image)
	if err != nil {
		return nil, err
	}
	sort.Slice(vs, func(i, j int) bool { return CompareVersions(vs[i].Version, vs[j].Version) > 0 })
	return vs, nil
}

func (c *Catalog) queryVersions(ctx context.Context, where string, args ...any) ([]Version, error) {
	rows, err := c.db.QueryContext(ctx, c.q("SELECT "+versionColumns+" WHERE "+where), args...)
	if err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	var vs []Version
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("list versions: %w", err)
		}
		vs = append(vs, v)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list versions: %w", err)
	}
	for i := range vs {
		if err := c.decorate(ctx, &vs[i]); err != nil {
			return nil, err
		}
	}
	return vs, nil
}

// decorate fills tags, channels and the outdated note.
func (c *Catalog) decorate(ctx context.Context, v *Version) error {
	rows, err := c.db.QueryContext(ctx, c.q("SELECT key, value FROM version_tags WHERE version_id = ? ORDER BY key"), v.ID)
	if err != nil {
		return fmt.Errorf("read tags of %s: %w", v.Ref(), err)
	}
	for rows.Next() {
		var k, val string
		if err := rows.Scan(&k, &val); err != nil {
			rows.Close()
			return err
		}
		if v.Tags == nil {
			v.Tags = map[string]string{}
		}
		v.Tags[k] = val
	}
	rows.Close()
	rows, err = c.db.QueryContext(ctx, c.q("SELECT name FROM channels WHERE version_id = ? ORDER BY name"), v.ID)
	if err != nil {
		return fmt.Errorf("read channels of %s: %w", v.Ref(), err)
	}
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return err
		}
		v.Channels = append(v.Channels, n)
	}
	rows.Close()
	if v.Parent != nil {
		note, err := c.outdatedReason(ctx, *v.Parent)
		if err != nil {
			return err
		}
		v.Outdated = note
	}
	return nil
}

// outdatedReason says why a child of parent is outdated: the parent is
// revoked, or one of the parent image's channels has moved past it.
func (c *Catalog) outdatedReason(ctx context.Context, parent Ref) (string, error) {
	pv, err := scanVersion(c.db.QueryRowContext(ctx, c.q("SELECT "+versionColumns+" WHERE i.name = ? AND v.version = ?"), parent.Image, parent.Version))
	if err != nil {
		return "", fmt.Errorf("read parent %s: %w", parent, err)
	}
	if pv.Status == StatusRevoked {
		return fmt.Sprintf("parent %s is revoked", parent), nil
	}
	chs, err := c.Channels(ctx, parent.Image)
	if err != nil {
		return "", err
	}
	var notes []string
	for _, ch := range chs {
		if ch.Version != "" && CompareVersions(ch.Version, parent.Version) > 0 {
			notes = append(notes, fmt.Sprintf("parent %s is behind channel %s (%s)", parent, ch.Name, ch.Version))
		}
	}
	return strings.Join(notes, "; "), nil
}

// Outdated lists the versions (of any image) whose parent is no longer the
// newest of its channel, or is revoked.
func (c *Catalog) Outdated(ctx context.Context) ([]Version, error) {
	vs, err := c.queryVersions(ctx, "v.parent_version_id IS NOT NULL AND v.status NOT IN ('deleted', 'revoked')")
	if err != nil {
		return nil, err
	}
	var out []Version
	for _, v := range vs {
		if v.Outdated != "" {
			out = append(out, v)
		}
	}
	return out, nil
}

// Children returns the versions built directly on ref.
func (c *Catalog) Children(ctx context.Context, ref Ref) ([]Version, error) {
	id, err := c.versionID(ctx, c.db, ref)
	if err != nil {
		return nil, err
	}
	return c.queryVersions(ctx, "v.parent_version_id = ?", id)
}

// PutCopy records (or updates, matched by kind and resource id) a copy of a
// version. ParentID, when set, must be an existing copy (of any version: a
// source can be shared).
func (c *Catalog) PutCopy(ctx context.Context, ref Ref, cp Copy) (Copy, error) {
	if !validKind(cp.Kind) {
		return Copy{}, fmt.Errorf("%w: copy kind %q: use one of %v", ErrInvalid, cp.Kind, Kinds)
	}
	if cp.ResourceID == "" {
		return Copy{}, fmt.Errorf("%w: a %s copy needs a resource id (ARM id, blob URL or path)", ErrInvalid, cp.Kind)
	}
	if strings.Contains(cp.ResourceID, "sig=") {
		return Copy{}, fmt.Errorf("%w: resource id of the %s copy carries a SAS signature: record the URL without its query", ErrInvalid, cp.Kind)
	}
	detail := "{}"
	if len(cp.Detail) > 0 {
		if !json.Valid(cp.Detail) {
			return Copy{}, fmt.Errorf("%w: copy detail is not valid JSON", ErrInvalid)
		}
		detail = string(cp.Detail)
	}
	var id int64
	err := c.tx(ctx, func(tx *sql.Tx) error {
		vid, err := c.versionID(ctx, tx, ref)
		if err != nil {
			return err
		}
		var parent sql.NullInt64
		if cp.ParentID != 0 {
			var n int
			if err := tx.QueryRowContext(ctx, c.q("SELECT COUNT(*) FROM copies WHERE id = ?"), cp.ParentID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("%w: parent copy %d of the %s copy", ErrNotFound, cp.ParentID, cp.Kind)
			}
			parent = sql.NullInt64{Int64: cp.ParentID, Valid: true}
			// An update must not make a copy its own ancestor.
			var self int64
			err := tx.QueryRowContext(ctx, c.q("SELECT id FROM copies WHERE version_id = ? AND kind = ? AND resource_id = ?"),
				vid, string(cp.Kind), cp.ResourceID).Scan(&self)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			for at, hops := cp.ParentID, 0; self != 0 && at != 0 && hops < 1000; hops++ {
				if at == self {
					return fmt.Errorf("%w: copy %d cannot be made from itself or a copy made from it", ErrInvalid, self)
				}
				var next sql.NullInt64
				if err := tx.QueryRowContext(ctx, c.q("SELECT parent_copy_id FROM copies WHERE id = ?"), at).Scan(&next); err != nil {
					return err
				}
				at = next.Int64
			}
		}
		now := c.nowText()
		return tx.QueryRowContext(ctx, c.q(`INSERT INTO copies (version_id, kind, location, resource_id, fingerprint, state,
			parent_copy_id, detail, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (version_id, kind, resource_id) DO UPDATE SET location = excluded.location,
			fingerprint = excluded.fingerprint, state = excluded.state, parent_copy_id = excluded.parent_copy_id,
			detail = excluded.detail, updated_at = excluded.updated_at RETURNING id`),
			vid, string(cp.Kind), cp.Location, cp.ResourceID, cp.Fingerprint, cp.State, parent, detail, now, now).Scan(&id)
	})
	if err != nil {
		return Copy{}, fmt.Errorf("record %s copy of %s: %w", cp.Kind, ref, err)
	}
	return c.copyByID(ctx, id)
}

// SetCopyState changes the state of a copy (e.g. Creating -> Succeeded).
func (c *Catalog) SetCopyState(ctx context.Context, copyID int64, state string) error {
	res, err := c.db.ExecContext(ctx, c.q("UPDATE copies SET state = ?, updated_at = ? WHERE id = ?"), state, c.nowText(), copyID)
	if err != nil {
		return fmt.Errorf("set state of copy %d: %w", copyID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: copy %d", ErrNotFound, copyID)
	}
	return nil
}

const copyColumns = `c.id, c.kind, c.location, c.resource_id, c.fingerprint, c.state, c.parent_copy_id, c.detail,
	c.created_at, c.updated_at, i.name, v.version
	FROM copies c JOIN versions v ON v.id = c.version_id JOIN images i ON i.id = v.image_id`

func scanCopy(s interface{ Scan(...any) error }) (Copy, error) {
	var cp Copy
	var kind, detail, created, updated string
	var parent sql.NullInt64
	if err := s.Scan(&cp.ID, &kind, &cp.Location, &cp.ResourceID, &cp.Fingerprint, &cp.State, &parent, &detail,
		&created, &updated, &cp.Ref.Image, &cp.Ref.Version); err != nil {
		return cp, err
	}
	cp.Kind = CopyKind(kind)
	cp.ParentID = parent.Int64
	if detail != "" && detail != "{}" {
		cp.Detail = json.RawMessage(detail)
	}
	cp.CreatedAt, cp.UpdatedAt = parseTime(created), parseTime(updated)
	return cp, nil
}

func (c *Catalog) copyByID(ctx context.Context, id int64) (Copy, error) {
	cp, err := scanCopy(c.db.QueryRowContext(ctx, c.q("SELECT "+copyColumns+" WHERE c.id = ?"), id))
	if errors.Is(err, sql.ErrNoRows) {
		return Copy{}, fmt.Errorf("%w: copy %d", ErrNotFound, id)
	}
	return cp, err
}

// queryCopies lists the copies matching where, through q (the database or a
// transaction).
func (c *Catalog) queryCopies(ctx context.Context, q querier, where string, args ...any) ([]Copy, error) {
	rows, err := q.QueryContext(ctx, c.q("SELECT "+copyColumns+" WHERE "+where+" ORDER BY c.id"), args...)
	if err != nil {
		return nil, fmt.Errorf("list copies: %w", err)
	}
	defer rows.Close()
	var out []Copy
	for rows.Next() {
		cp, err := scanCopy(rows)
		if err != nil {
			return nil, fmt.Errorf("list copies: %w", err)
		}
		out = append(out, cp)
	}
	return out, rows.Err()
}

// Copies lists a version's copies in lineage order.
func (c *Catalog) Copies(ctx context.Context, ref Ref) ([]Copy, error) {
	if _, err := c.versionID(ctx, c.db, ref); err != nil {
		return nil, err
	}
	cps, err := c.queryCopies(ctx, c.db, "i.name = ? AND v.version = ?", ref.Image, ref.Version)
	if err != nil {
		return nil, err
	}
	sortCopies(cps)
	return cps, nil
}

// FindCopies returns every copy (of any version) with this kind and resource
// id: how a publisher finds what it made before, and its fingerprint.
func (c *Catalog) FindCopies(ctx context.Context, kind CopyKind, resourceID string) ([]Copy, error) {
	return c.queryCopies(ctx, c.db, "c.kind = ? AND c.resource_id = ?", string(kind), resourceID)
}

func kindOrder(k CopyKind) int {
	for i, x := range Kinds {
		if x == k {
			return i
		}
	}
	return len(Kinds)
}

func sortCopies(cps []Copy) {
	sort.SliceStable(cps, func(i, j int) bool {
		if a, b := kindOrder(cps[i].Kind), kindOrder(cps[j].Kind); a != b {
			return a < b
		}
		if cps[i].Location != cps[j].Location {
			return cps[i].Location < cps[j].Location
		}
		return cps[i].ID < cps[j].ID
	})
}

// Lineage returns a version and its copies as a tree: each copy under the
// copy it was made from; copies whose source is not a copy of this version
// are roots.
func (c *Catalog) Lineage(ctx context.Context, ref Ref) (*Lineage, error) {
	v, err := c.Version(ctx, ref)
	if err != nil {
		return nil, err
	}
	cps, err := c.Copies(ctx, ref)
	if err != nil {
		return nil, err
	}
	nodes := map[int64]*LineageNode{}
	for _, cp := range cps {
		nodes[cp.ID] = &LineageNode{Copy: cp}
	}
	l := &Lineage{Version: v}
	for _, cp := range cps {
		n := nodes[cp.ID]
		if p, ok := nodes[cp.ParentID]; ok && cp.ParentID != cp.ID {
			p.Children = append(p.Children, n)
		} else {
			if cp.ParentID != 0 && cp.ParentID != cp.ID {
				if src, err := c.copyByID(ctx, cp.ParentID); err == nil {
					n.Source = fmt.Sprintf("%s %s of %s", src.Kind, src.ResourceID, src.Ref)
				}
			}
			l.Roots = append(l.Roots, n)
		}
	}
	return l, nil
}
