package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// HostReport is one row of a host's history: what it ran and whether it
// had drifted or failed its check, as reported at At.
type HostReport struct {
	At       time.Time `json:"at"`
	Platform string    `json:"platform"`
	Image    string    `json:"image,omitempty"`
	Version  string    `json:"version,omitempty"`
	Drifted  bool      `json:"drifted,omitempty"`
	Failed   bool      `json:"failed,omitempty"`
	Source   string    `json:"source,omitempty"`
}

// HostHistory returns host's history since the given time (zero: all that
// is kept), newest first, at most limit rows (0: 100; at most 1,000).
func (c *Catalog) HostHistory(ctx context.Context, host string, since time.Time, limit int) ([]HostReport, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, HistoryPerHost)
	rows, err := c.db.QueryContext(ctx, c.q(fmt.Sprintf(`SELECT at, platform, image, version, drifted, failed, source FROM host_reports
		WHERE host = ? AND at >= ? ORDER BY at DESC, id DESC LIMIT %d`, limit)), host, fmtTime(since))
	if err != nil {
		return nil, fmt.Errorf("read the history of %s: %w", host, err)
	}
	defer rows.Close()
	out := []HostReport{}
	for rows.Next() {
		var r HostReport
		var at string
		var drifted, failed int
		if err := rows.Scan(&at, &r.Platform, &r.Image, &r.Version, &drifted, &failed, &r.Source); err != nil {
			return nil, err
		}
		r.At, r.Drifted, r.Failed = parseTime(at), drifted == 1, failed == 1
		out = append(out, r)
	}
	return out, rows.Err()
}

// DriftedSince says since when host has been drifted without a break (its
// first drifted report after a clean one), or the zero time when its last
// report found no drift. ErrNotFound for an unknown host.
func (c *Catalog) DriftedSince(ctx context.Context, host string) (time.Time, error) {
	var since string
	err := c.db.QueryRowContext(ctx, c.q("SELECT drifted_since FROM hosts WHERE name = ?"), host).Scan(&since)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, fmt.Errorf("%w: host %q", ErrNotFound, host)
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read host %s: %w", host, err)
	}
	return parseTime(since), nil
}

// SnapshotEvery is the spacing of fleet snapshots (FleetSeries).
const SnapshotEvery = 5 * time.Minute

// SnapshotFleet records the fleet's counts (by image, version, drift and
// failure) at now rounded down to SnapshotEvery, once: the first replica
// to take a bucket's snapshot writes all of it, later ones in the same
// bucket write nothing, so a point is one moment of the fleet (row by row
// inserts would mix the counts of two moments when hosts moved between
// them). It reads the few rows of the counts table, not the hosts.
func (c *Catalog) SnapshotFleet(ctx context.Context, now time.Time) error {
	at := fmtTime(now.UTC().Truncate(SnapshotEvery))
	err := c.tx(ctx, func(tx *sql.Tx) error {
		if c.dialect == dialectPostgres {
			// SHARE ROW EXCLUSIVE conflicts with itself: two replicas'
			// snapshots run one after the other, and the second sees
			// the first's rows. Intake never touches this table.
			if _, err := tx.ExecContext(ctx, "LOCK TABLE fleet_snapshots IN SHARE ROW EXCLUSIVE MODE"); err != nil {
				return err
			}
		} // SQLite has one writer: the statement below is atomic already
		_, err := tx.ExecContext(ctx, c.q(`INSERT INTO fleet_snapshots (at, image, version, drifted, failed, n)
			SELECT ?, image, version, drifted, failed, SUM(n) FROM fleet_counts
			WHERE n > 0 AND NOT EXISTS (SELECT 1 FROM fleet_snapshots WHERE at = ?)
			GROUP BY image, version, drifted, failed
			ON CONFLICT (at, image, version, drifted, failed) DO NOTHING`), at, at)
		return err
	})
	if err != nil {
		return fmt.Errorf("snapshot the fleet: %w", err)
	}
	return nil
}

// FleetPoint is the fleet (or one image's hosts) at one snapshot.
type FleetPoint struct {
	At      time.Time `json:"at"`
	Hosts   int       `json:"hosts"`
	Drifted int       `json:"drifted"`
	Failed  int       `json:"failed"`
	// Versions counts the hosts on each version (with an image only).
	Versions map[string]int `json:"versions,omitempty"`
}

// FleetSeries returns the snapshots taken since the given time, oldest
// first: of image's hosts, or of the whole fleet when image is "".
func (c *Catalog) FleetSeries(ctx context.Context, image string, since time.Time) ([]FleetPoint, error) {
	// the whole fleet is summed by the database: one row a snapshot
	// instead of one a version and drift (a day is 288 snapshots)
	q := "SELECT at, '', SUM(drifted * n), SUM(failed * n), SUM(n) FROM fleet_snapshots WHERE at >= ? GROUP BY at"
	args := []any{fmtTime(since)}
	if image != "" {
		q = "SELECT at, version, drifted, failed, n FROM fleet_snapshots WHERE at >= ? AND image = ?"
		args = append(args, image)
	}
	rows, err := c.db.QueryContext(ctx, c.q(q+" ORDER BY at"), args...)
	if err != nil {
		return nil, fmt.Errorf("read fleet snapshots: %w", err)
	}
	defer rows.Close()
	out := []FleetPoint{}
	for rows.Next() {
		var at, version string
		var drifted, failed, n int
		if err := rows.Scan(&at, &version, &drifted, &failed, &n); err != nil {
			return nil, err
		}
		t := parseTime(at)
		if len(out) == 0 || !out[len(out)-1].At.Equal(t) {
			out = append(out, FleetPoint{At: t})
			if image != "" {
				out[len(out)-1].Versions = map[string]int{}
			}
		}
		p := &out[len(out)-1]
		if image == "" { // summed: drifted and failed are counts
			p.Hosts, p.Drifted, p.Failed = n, drifted, failed
			continue
		}
		p.Hosts += n
		if drifted == 1 {
			p.Drifted += n
		}
		if failed == 1 {
			p.Failed += n
		}
		p.Versions[version] += n
	}
	return out, rows.Err()
}

// PruneFleetHistory deletes history rows and snapshots older than
// HistoryRetention before now, and reports how many rows went.
func (c *Catalog) PruneFleetHistory(ctx context.Context, now time.Time) (int64, error) {
	cut := fmtTime(now.Add(-HistoryRetention))
	var total int64
	for _, table := range []string{"host_reports", "fleet_snapshots"} {
		res, err := c.db.ExecContext(ctx, c.q("DELETE FROM "+table+" WHERE at < ?"), cut)
		if err != nil {
			return total, fmt.Errorf("prune %s: %w", table, err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

// ClaimJob claims the job name for holder when nobody holds an unexpired
// claim on it and it last finished at least every ago: the way replicas
// sharing one catalog run a periodic job (the Azure pull) once between
// them. The claim lasts ttl; a holder that dies loses it then. FinishRun
// records the run's end.
func (c *Catalog) ClaimJob(ctx context.Context, name, holder string, every, ttl time.Duration) (bool, error) {
	now := c.now()
	res, err := c.db.ExecContext(ctx, c.q(`INSERT INTO leases (name, holder, expires_at, done_at) VALUES (?, ?, ?, '')
		ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
		WHERE leases.expires_at < ? AND leases.done_at <= ?`),
		name, holder, fmtTime(now.Add(ttl)), fmtTime(now), fmtTime(now.Add(-every)))
	if err != nil {
		return false, fmt.Errorf("claim job %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// FinishJob records that holder's run of name ended now and releases the
// claim (a claim another holder took over meanwhile is left alone).
func (c *Catalog) FinishJob(ctx context.Context, name, holder string) error {
	_, err := c.db.ExecContext(ctx, c.q("UPDATE leases SET expires_at = '', done_at = ? WHERE name = ? AND holder = ?"), c.nowText(), name, holder)
	if err != nil {
		return fmt.Errorf("finish job %s: %w", name, err)
	}
	return nil
}

// RenewJob extends holder's claim on name to ttl from now, and says
// whether holder still had it (false: it was finished, released, or
// taken over by another holder after it expired).
func (c *Catalog) RenewJob(ctx context.Context, name, holder string, ttl time.Duration) (bool, error) {
	res, err := c.db.ExecContext(ctx, c.q("UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND expires_at <> ''"),
		fmtTime(c.now().Add(ttl)), name, holder)
	if err != nil {
		return false, fmt.Errorf("renew job %s: %w", name, err)
	}
	n, _ := res.RowsAffected()
	return n == 1, nil
}

// ErrJobLost: a job's claim was lost while it ran (HoldJob).
var ErrJobLost = errors.New("the job's claim was lost (another holder may run it now)")

// HoldJob keeps holder's claim on name alive while a long job runs: a
// short claim (ttl) renewed every ttl/3, so that a holder that dies
// blocks the job for ttl at most, however long a run takes. The returned
// context is cancelled, with cause ErrJobLost, when the claim is lost or
// could not be renewed for ttl (the catalog unreachable): the job stops
// rather than run twice. stop ends the renewals.
func (c *Catalog) HoldJob(ctx context.Context, name, holder string, ttl time.Duration) (held context.Context, stop func()) {
	held, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(ttl / 3)
		defer tick.Stop()
		renewed := time.Now()
		for {
			select {
			case <-held.Done():
				return
			case <-tick.C:
			}
			ok, err := c.RenewJob(held, name, holder, ttl)
			switch {
			case err == nil && !ok:
				cancel(fmt.Errorf("%w: %s", ErrJobLost, name))
				return
			case err == nil:
				renewed = time.Now()
			case time.Since(renewed) >= ttl:
				cancel(fmt.Errorf("%w: %s not renewed for %s: %v", ErrJobLost, name, ttl, err))
				return
			}
		}
	}()
	return held, func() { cancel(nil); <-done }
}

// JobDone returns when name last finished (FinishJob), or the zero time.
func (c *Catalog) JobDone(ctx context.Context, name string) (time.Time, error) {
	var done string
	err := c.db.QueryRowContext(ctx, c.q("SELECT done_at FROM leases WHERE name = ?"), name).Scan(&done)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("read job %s: %w", name, err)
	}
	return parseTime(done), nil
}

// ReleaseJob gives up holder's claim on name without recording a finished
// run (a failed one): the next claim may come at once.
func (c *Catalog) ReleaseJob(ctx context.Context, name, holder string) error {
	_, err := c.db.ExecContext(ctx, c.q("UPDATE leases SET expires_at = '' WHERE name = ? AND holder = ?"), name, holder)
	if err != nil {
		return fmt.Errorf("release job %s: %w", name, err)
	}
	return nil
}
