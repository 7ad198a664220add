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

// FleetGroup is how many hosts of one image version on one platform are
// in one state.
type FleetGroup struct {
	Image    string
	Version  string
	Platform string
	State    string
	Hosts    int
}

// Unpublished labels, in FleetBreakdown, an image or a version the catalog
// has not published (an agent may report any name).
const Unpublished = "unknown"

// FleetBreakdown counts the fleet by image, version, platform and state
// (against channel): the counts table and the stale hosts, never a scan
// of the fleet. Groups without hosts are left out. An image or version
// the catalog has not published is counted as Unpublished, so that the
// breakdown (and the metrics drawn from it) grows with what was
// published, never with what agents send.
func (c *Catalog) FleetBreakdown(ctx context.Context, channel string, staleBefore time.Time) ([]FleetGroup, error) {
	facts, err := c.versionFacts(ctx, channel)
	if err != nil {
		return nil, err
	}
	groups, err := c.countGroups(ctx, FleetFilter{}, staleBefore)
	if err != nil {
		return nil, err
	}
	byVersion := factIndex(facts)
	type key struct{ image, version, platform, state string }
	sums := map[key]int{}
	var order []key
	images := map[string]bool{}
	for _, f := range facts {
		images[f.image] = true
	}
	add := func(g hostGroup, st string, n int) {
		if n <= 0 {
			return
		}
		k := key{g.image, g.version, g.platform, st}
		if _, published := byVersion[factKey{g.image, g.version}]; !published {
			k.version = Unpublished
		}
		if !images[g.image] {
			k.image = Unpublished
		}
		if _, ok := sums[k]; !ok {
			order = append(order, k)
		}
		sums[k] += n
	}
	for _, g := range groups {
		st, splits := g.state(byVersion)
		if splits {
			add(g, HostStale, g.stale)
			add(g, st, g.n-g.stale)
		} else {
			add(g, st, g.n)
		}
	}
	out := make([]FleetGroup, 0, len(order))
	for _, k := range order {
		out = append(out, FleetGroup{Image: k.image, Version: k.version, Platform: k.platform, State: k.state, Hosts: sums[k]})
	}
	return out, nil
}

// ReportAges counts hosts by the age of their last report at now: out[i]
// holds those at most bounds[i] old (and older than bounds[i-1]), and a
// last element those older than every bound. bounds must increase. One
// pass over the hosts (last_report is not indexed, so that reports do not
// change an index; CachedReportAges makes this at most one pass every
// maxAge).
func (c *Catalog) ReportAges(ctx context.Context, now time.Time, bounds []time.Duration) ([]int, error) {
	var cols []string
	var args []any
	for _, b := range bounds {
		cols = append(cols, "COALESCE(SUM(CASE WHEN last_report >= ? THEN 1 ELSE 0 END), 0)")
		args = append(args, fmtTime(now.Add(-b)))
	}
	cols = append(cols, "COUNT(*)")
	cum := make([]int, len(cols))
	ptrs := make([]any, len(cols))
	for i := range cum {
		ptrs[i] = &cum[i]
	}
	if err := c.db.QueryRowContext(ctx, c.q("SELECT "+strings.Join(cols, ", ")+" FROM hosts"), args...).Scan(ptrs...); err != nil {
		return nil, fmt.Errorf("count hosts by report age: %w", err)
	}
	out := make([]int, len(cum))
	prev := 0
	for i, n := range cum {
		out[i] = n - prev
		prev = n
	}
	return out, nil
}

type storedAges struct {
	Bounds []time.Duration `json:"bounds_ns"`
	Counts []int           `json:"counts"`
}

// CachedReportAges is ReportAges as stored in the catalog by the last
// replica that computed it, and when that was; a stored figure older than
// maxAge (or for other bounds) is computed again at now and stored. A
// scrape thus reads one row, and the fleet is read at most about once per
// maxAge whatever the number of replicas and scrapers.
func (c *Catalog) CachedReportAges(ctx context.Context, now time.Time, bounds []time.Duration, maxAge time.Duration) ([]int, time.Time, error) {
	const name = "report_ages"
	var data, at string
	err := c.db.QueryRowContext(ctx, c.q("SELECT data, computed_at FROM fleet_aggregates WHERE name = ?"), name).Scan(&data, &at)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return nil, time.Time{}, fmt.Errorf("read stored report ages: %w", err)
	}
	if err == nil {
		var st storedAges
		if json.Unmarshal([]byte(data), &st) == nil && slices.Equal(st.Bounds, bounds) && len(st.Counts) == len(bounds)+1 {
			if t := parseTime(at); now.Sub(t) < maxAge && !t.After(now.Add(maxAge)) {
				return st.Counts, t, nil
			}
		}
	}
	counts, err := c.ReportAges(ctx, now, bounds)
	if err != nil {
		return nil, time.Time{}, err
	}
	b, _ := json.Marshal(storedAges{Bounds: bounds, Counts: counts})
	if _, err := c.db.ExecContext(ctx, c.q(`INSERT INTO fleet_aggregates (name, data, computed_at) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET data = excluded.data, computed_at = excluded.computed_at`), name, string(b), fmtTime(now)); err != nil {
		return nil, time.Time{}, fmt.Errorf("store report ages: %w", err)
	}
	return counts, now, nil
}
