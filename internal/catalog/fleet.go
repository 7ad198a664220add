package catalog

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Host platforms.
const (
	PlatformOnprem = "onprem"
	PlatformAzure  = "azure"
)

// MaxDriftSummary bounds the drift summary stored per host.
const MaxDriftSummary = 64 << 10

// MaxRegion bounds a host's region (an Azure location, an on-prem site).
const MaxRegion = 64

// ReportHost records (or refreshes) what a host runs and its drift summary,
// and its history (ReportHosts). LastReport defaults to now. An empty
// ResourceID keeps the one recorded.
func (c *Catalog) ReportHost(ctx context.Context, h Host) error {
	if err := c.ReportHosts(ctx, []Host{h}); err != nil {
		if errors.Is(err, ErrInvalid) {
			return err
		}
		return fmt.Errorf("record host %s: %w", h.Name, err)
	}
	return nil
}

// HostFilter selects hosts; zero fields match everything.
type HostFilter struct {
	Image, Version, Platform, Region string
}

// equalities are the conditions image = ?, version = ?, platform = ?,
// region = ? for the values given (an empty one matches everything).
func equalities(image, version, platform, region string) (where []string, args []any) {
	for _, p := range []struct{ col, val string }{{"image", image}, {"version", version}, {"platform", platform}, {"region", region}} {
		if p.val != "" {
			where = append(where, p.col+" = ?")
			args = append(args, p.val)
		}
	}
	return where, args
}

// Hosts lists the fleet, by name.
func (c *Catalog) Hosts(ctx context.Context, f HostFilter) ([]Host, error) {
	where, args := equalities(f.Image, f.Version, f.Platform, f.Region)
	query := "SELECT name, platform, image, version, resource_id, region, last_report, drift_summary FROM hosts"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := c.db.QueryContext(ctx, c.q(query+" ORDER BY name"), args...)
	if err != nil {
		return nil, fmt.Errorf("list hosts: %w", err)
	}
	defer rows.Close()
	var out []Host
	for rows.Next() {
		var h Host
		var last, summary string
		if err := rows.Scan(&h.Name, &h.Platform, &h.Image, &h.Version, &h.ResourceID, &h.Region, &last, &summary); err != nil {
			return nil, err
		}
		h.LastReport = parseTime(last)
		if summary != "" && summary != "{}" {
			h.DriftSummary = json.RawMessage(summary)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// HostsRunning lists the hosts that report running ref.
func (c *Catalog) HostsRunning(ctx context.Context, ref Ref) ([]Host, error) {
	return c.Hosts(ctx, HostFilter{Image: ref.Image, Version: ref.Version})
}

// RemoveHost forgets a host (decommissioned) and its agent credential.
func (c *Catalog) RemoveHost(ctx context.Context, name string) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, c.q("DELETE FROM hosts WHERE name = ?"), name)
		if err != nil {
			return fmt.Errorf("remove host %s: %w", name, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: host %s", ErrNotFound, name)
		}
		if _, err := tx.ExecContext(ctx, c.q("DELETE FROM host_credentials WHERE host = ?"), name); err != nil {
			return fmt.Errorf("remove the credential of host %s: %w", name, err)
		}
		return nil
	})
}

// HostView is a host with how stale its image is.
type HostView struct {
	Host
	Channel        string `json:"channel,omitempty"`
	ChannelVersion string `json:"channel_version,omitempty"`
	VersionsBehind int    `json:"versions_behind"` // active versions between the host's and the channel's
	Revoked        bool   `json:"revoked,omitempty"`
	Unknown        bool   `json:"unknown,omitempty"` // the version is not in the catalog
	// State is the worst of HostStates that applies (FleetHosts, FleetHost).
	State string `json:"state,omitempty"`
}

// Fleet returns every host with its staleness against channel (e.g. "prod").
func (c *Catalog) Fleet(ctx context.Context, channel string) ([]HostView, error) {
	hosts, err := c.Hosts(ctx, HostFilter{})
	if err != nil {
		return nil, err
	}
	chCache := map[string]string{}
	verCache := map[string][]string{}
	out := make([]HostView, 0, len(hosts))
	for _, h := range hosts {
		hv := HostView{Host: h, Channel: channel}
		if h.Image == "" {
			hv.Unknown = true
			out = append(out, hv)
			continue
		}
		v, err := c.Version(ctx, Ref{Image: h.Image, Version: h.Version})
		if errors.Is(err, ErrNotFound) {
			hv.Unknown = true
			out = append(out, hv)
			continue
		}
		if err != nil {
			return nil, err
		}
		hv.Revoked = v.Status == StatusRevoked
		cv, ok := chCache[h.Image]
		if !ok {
			chs, err := c.Channels(ctx, h.Image)
			if err != nil {
				return nil, err
			}
			for _, ch := range chs {
				if ch.Name == channel {
					cv = ch.Version
				}
			}
			chCache[h.Image] = cv
		}
		hv.ChannelVersion = cv
		if cv != "" && CompareVersions(h.Version, cv) < 0 {
			vs, ok := verCache[h.Image]
			if !ok {
				id, err := c.imageID(ctx, c.db, h.Image)
				if err != nil {
					return nil, err
				}
				if vs, err = c.versionStrings(ctx, c.db, id, false); err != nil {
					return nil, err
				}
				verCache[h.Image] = vs
			}
			for _, s := range vs {
				if CompareVersions(s, h.Version) > 0 && CompareVersions(s, cv) <= 0 {
					hv.VersionsBehind++
				}
			}
		}
		out = append(out, hv)
	}
	return out, nil
}

// PutBaseline stores the drift baseline captured with a version (format
// names the encoding, e.g. "imgpipe-baseline/v1+json"). It replaces an
// earlier one of the same format.
func (c *Catalog) PutBaseline(ctx context.Context, ref Ref, format string, data []byte) error {
	if format == "" {
		return fmt.Errorf("%w: a baseline needs a format name", ErrInvalid)
	}
	sum := sha256.Sum256(data)
	return c.tx(ctx, func(tx *sql.Tx) error {
		id, err := c.versionID(ctx, tx, ref)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, c.q(`INSERT INTO drift_baselines (version_id, format, data, sha256, created_at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (version_id, format) DO UPDATE SET data = excluded.data, sha256 = excluded.sha256, created_at = excluded.created_at`),
			id, format, data, hex.EncodeToString(sum[:]), c.nowText())
		if err != nil {
			return fmt.Errorf("store baseline of %s: %w", ref, err)
		}
		return nil
	})
}

// Baseline returns the stored baseline of a version in format, verified
// against the SHA-256 recorded with it.
func (c *Catalog) Baseline(ctx context.Context, ref Ref, format string) ([]byte, error) {
	id, err := c.versionID(ctx, c.db, ref)
	if err != nil {
		return nil, err
	}
	var data []byte
	var sum string
	err = c.db.QueryRowContext(ctx, c.q("SELECT data, sha256 FROM drift_baselines WHERE version_id = ? AND format = ?"), id, format).Scan(&data, &sum)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: no %s baseline for %s (capture one at build time)", ErrNotFound, format, ref)
	}
	if err != nil {
		return nil, fmt.Errorf("read baseline of %s: %w", ref, err)
	}
	got := sha256.Sum256(data)
	if hex.EncodeToString(got[:]) != sum {
		return nil, fmt.Errorf("baseline of %s in the catalog is corrupt (SHA-256 mismatch): capture it again", ref)
	}
	return data, nil
}
