package catalog

import (
	"context"
	"fmt"
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

// FleetBreakdown counts the fleet by image, version, platform and state
// (against channel): the counts table and the stale hosts, never a scan
// of the fleet. Groups without hosts are left out.
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
	add := func(g hostGroup, st string, n int) {
		if n <= 0 {
			return
		}
		k := key{g.image, g.version, g.platform, st}
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
// pass over the narrow last_report index.
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
