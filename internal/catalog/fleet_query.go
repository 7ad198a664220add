package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"
)

// Host states, worst first: the order the dashboard sorts by.
const (
	HostRevoked = "revoked"
	HostError   = "error"
	HostDrifted = "drifted"
	HostBehind  = "behind"
	HostUnknown = "unknown"
	HostStale   = "stale"
	HostNoAgent = "no-agent"
	HostOK      = "ok"
)

// HostStates lists the states worst first.
var HostStates = []string{HostRevoked, HostError, HostDrifted, HostBehind, HostUnknown, HostStale, HostNoAgent, HostOK}

// summaryFlags are the drift summary's conventional top-level keys the
// catalog keeps in columns for filtering: drifted, error and source.
type summaryFlags struct {
	Drifted bool   `json:"drifted"`
	Error   string `json:"error"`
	Source  string `json:"source"`
}

func flagsOf(summary string) summaryFlags {
	var f summaryFlags
	_ = json.Unmarshal([]byte(summary), &f)
	return f
}

// versionFact is what the fleet needs to know of one (image, version).
type versionFact struct {
	image, version, channelVersion string
	revoked                        bool
	behind                         int
}

// versionFacts computes, for every version in the catalog, whether it is
// revoked and how many active versions lie between it and channel's. It
// reads two small tables (versions and channels), not the fleet.
func (c *Catalog) versionFacts(ctx context.Context, channel string) ([]versionFact, error) {
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT i.name, v.version, v.status, COALESCE(cv.version, '')
		FROM versions v JOIN images i ON i.id = v.image_id
		LEFT JOIN channels ch ON ch.image_id = v.image_id AND ch.name = ?
		LEFT JOIN versions cv ON cv.id = ch.version_id`), channel)
	if err != nil {
		return nil, fmt.Errorf("read version facts: %w", err)
	}
	defer rows.Close()
	var facts []versionFact
	active := map[string][]string{}
	for rows.Next() {
		var f versionFact
		var status string
		if err := rows.Scan(&f.image, &f.version, &status, &f.channelVersion); err != nil {
			return nil, err
		}
		f.revoked = status == StatusRevoked
		if status != StatusRevoked && status != "deleted" {
			active[f.image] = append(active[f.image], f.version)
		}
		facts = append(facts, f)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for img := range active {
		vs := active[img]
		sort.Slice(vs, func(i, j int) bool { return CompareVersions(vs[i], vs[j]) < 0 })
	}
	for i := range facts {
		f := &facts[i]
		if f.channelVersion == "" || CompareVersions(f.version, f.channelVersion) >= 0 {
			continue
		}
		for _, s := range active[f.image] {
			if CompareVersions(s, f.version) > 0 && CompareVersions(s, f.channelVersion) <= 0 {
				f.behind++
			}
		}
	}
	return facts, nil
}

// FleetFilter selects a page of the fleet; zero fields match everything.
type FleetFilter struct {
	State    string // one of HostStates
	Image    string
	Version  string
	Platform string
	Search   string // substring of the host name
	// StaleBefore: hosts last heard from before it are stale.
	StaleBefore time.Time
	Limit       int // 0: 100; at most 10,000
	Offset      int
}

// FleetPage is a page of the fleet, worst state first, then by name.
type FleetPage struct {
	Hosts []HostView `json:"hosts"`
	Total int        `json:"total"` // hosts matching the filter
	// ByState counts the hosts matching the filter but its state, by state
	ByState map[string]int `json:"by_state,omitempty"`
}

// fleetSQL builds the common part of the fleet queries: the version facts
// as a VALUES list joined to hosts, and the state as a SQL expression.
func (c *Catalog) fleetSQL(facts []versionFact, staleBefore time.Time) (with string, args []any, state string) {
	var vals []string
	for _, f := range facts {
		vals = append(vals, "(CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS INTEGER))")
		args = append(args, f.image, f.version, f.channelVersion, boolInt(f.revoked), f.behind)
	}
	if len(vals) == 0 {
		with = "WITH vf (image, version, channel_version, revoked, behind) AS MATERIALIZED (SELECT '', '', '', 0, 0 WHERE 1 = 0) "
	} else {
		with = "WITH vf (image, version, channel_version, revoked, behind) AS MATERIALIZED (VALUES " + strings.Join(vals, ", ") + ") "
	}
	stale := fmtTime(staleBefore)
	state = `CASE WHEN vf.revoked = 1 THEN 0 WHEN h.failed = 1 THEN 1 WHEN h.drifted = 1 THEN 2 WHEN vf.behind > 0 THEN 3
		WHEN vf.image IS NULL THEN 4 WHEN h.last_report < ? THEN 5 WHEN h.source = 'azure' THEN 6 ELSE 7 END`
	return with, args, strings.ReplaceAll(state, "?", "'"+strings.ReplaceAll(stale, "'", "")+"'")
}

func stateRank(s string) int {
	for i, st := range HostStates {
		if st == s {
			return i
		}
	}
	return -1
}

const hostCols = "h.name, h.platform, h.image, h.version, h.resource_id, h.last_report, h.drift_summary, COALESCE(vf.channel_version, ''), COALESCE(vf.revoked, 0), COALESCE(vf.behind, 0), vf.image IS NULL"

func scanHostView(sc interface{ Scan(...any) error }, channel string, state *int) (HostView, error) {
	var hv HostView
	var last, summary string
	var revoked, unknown bool
	var rv int
	if err := sc.Scan(&hv.Name, &hv.Platform, &hv.Image, &hv.Version, &hv.ResourceID, &last, &summary, &hv.ChannelVersion, &rv, &hv.VersionsBehind, &unknown, state); err != nil {
		return hv, err
	}
	revoked = rv == 1
	hv.LastReport = parseTime(last)
	if summary != "" && summary != "{}" {
		hv.DriftSummary = json.RawMessage(summary)
	}
	hv.Channel, hv.Revoked, hv.Unknown = channel, revoked, unknown
	if unknown {
		hv.ChannelVersion, hv.VersionsBehind = "", 0
	}
	return hv, nil
}

// FleetHosts returns a page of the fleet measured against channel: hosts
// matching f, worst state first (revoked, error, drifted, behind,
// unknown, stale, no-agent, ok), then by name, and how many match.
func (c *Catalog) FleetHosts(ctx context.Context, channel string, f FleetFilter) (FleetPage, error) {
	facts, err := c.versionFacts(ctx, channel)
	if err != nil {
		return FleetPage{}, err
	}
	if f.State != "" && stateRank(f.State) < 0 {
		return FleetPage{}, fmt.Errorf("%w: state %q: use one of %s", ErrInvalid, f.State, strings.Join(HostStates, ", "))
	}
	where, args := equalities(f.Image, f.Version, f.Platform)
	if f.Search != "" {
		where = append(where, "name LIKE ? ESCAPE '!'")
		esc := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(f.Search)
		args = append(args, "%"+esc+"%")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	// The matching hosts, grouped by the columns their state depends on
	// (one scan of the hosts_fleet index); each group's state is decided
	// here, so counts need no row, and a page is read state by state.
	groups, err := c.hostGroups(ctx, f, where, args, f.StaleBefore)
	if err != nil {
		return FleetPage{}, err
	}
	byVersion := factIndex(facts)
	stale := fmtTime(f.StaleBefore)
	parts := map[string][]groupCond{}
	counts := map[string]int{}
	for _, g := range groups {
		cond := "(image = ? AND version = ? AND drifted = ? AND failed = ? AND source = ? AND platform = ?"
		gargs := []any{g.image, g.version, g.drifted, g.failed, g.source, g.platform}
		st, splits := g.state(byVersion)
		if !splits {
			parts[st] = append(parts[st], groupCond{cond + ")", gargs})
			counts[st] += g.n
			continue
		}
		if g.stale > 0 {
			parts[HostStale] = append(parts[HostStale], groupCond{cond + " AND last_report < ?)", append(slices.Clone(gargs), stale)})
			counts[HostStale] += g.stale
		}
		if g.n > g.stale {
			parts[st] = append(parts[st], groupCond{cond + " AND last_report >= ?)", append(slices.Clone(gargs), stale)})
			counts[st] += g.n - g.stale
		}
	}
	page := FleetPage{ByState: counts}
	skip, want := max(f.Offset, 0), limit
	var names []any
	for _, st := range HostStates {
		if f.State != "" && st != f.State {
			continue
		}
		n := counts[st]
		page.Total += n
		if want == 0 || n == 0 {
			continue
		}
		if skip >= n {
			skip -= n
			continue
		}
		q, qargs := pageQuery(parts[st], where, args, skip, want)
		rows, err := c.db.QueryContext(ctx, c.q(q), qargs...)
		if err != nil {
			return page, fmt.Errorf("list %s hosts: %w", st, err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return page, err
			}
			names = append(names, name)
			want--
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return page, err
		}
		skip = 0
	}
	page.Hosts = []HostView{}
	if len(names) == 0 {
		return page, nil
	}
	with2, args2, state2 := c.fleetSQL(facts, f.StaleBefore)
	in := strings.TrimSuffix(strings.Repeat("?, ", len(names)), ", ")
	rows, err := c.db.QueryContext(ctx, c.q(with2+"SELECT "+hostCols+", "+state2+" FROM hosts h LEFT JOIN vf ON vf.image = h.image AND vf.version = h.version WHERE h.name IN ("+in+")"), append(args2, names...)...)
	if err != nil {
		return page, fmt.Errorf("read hosts: %w", err)
	}
	defer rows.Close()
	byName := map[string]HostView{}
	for rows.Next() {
		var st int
		hv, err := scanHostView(rows, channel, &st)
		if err != nil {
			return page, err
		}
		hv.State = HostStates[st]
		byName[hv.Name] = hv
	}
	if err := rows.Err(); err != nil {
		return page, err
	}
	for _, n := range names {
		if hv, ok := byName[n.(string)]; ok { // a host removed in between is left out
			page.Hosts = append(page.Hosts, hv)
		}
	}
	return page, nil
}

// groupCond selects the hosts of one group (of one state).
type groupCond struct {
	cond string
	args []any
}

// pageQuery reads names skip..skip+want (in name order) of the hosts of
// parts that match where: each group is a range of the hosts_groups index
// in name order, cut at skip+want, and the groups are merged by name. Past
// SQLite's limit of compound SELECTs it ORs the groups instead.
func pageQuery(parts []groupCond, where []string, args []any, skip, want int) (string, []any) {
	and := ""
	if len(where) > 0 {
		and = " AND " + strings.Join(where, " AND ")
	}
	var qargs []any
	if len(parts) > 200 {
		var conds []string
		for _, p := range parts {
			conds = append(conds, p.cond)
			qargs = append(qargs, p.args...)
		}
		return "SELECT name FROM hosts WHERE (" + strings.Join(conds, " OR ") + ")" + and + fmt.Sprintf(" ORDER BY name LIMIT %d OFFSET %d", want, skip), append(qargs, args...)
	}
	subs := make([]string, len(parts))
	for i, p := range parts {
		subs[i] = fmt.Sprintf("SELECT name FROM (SELECT name FROM hosts WHERE %s%s ORDER BY name LIMIT %d) g%d", p.cond, and, skip+want, i)
		qargs = append(append(qargs, p.args...), args...)
	}
	return "SELECT name FROM (" + strings.Join(subs, " UNION ALL ") + fmt.Sprintf(") page ORDER BY name LIMIT %d OFFSET %d", want, skip), qargs
}

// FleetHost returns one host measured against channel (ErrNotFound): two
// lookups by key and the version facts, whatever the fleet's size.
func (c *Catalog) FleetHost(ctx context.Context, channel, name string, staleBefore time.Time) (HostView, error) {
	var image, version string
	err := c.db.QueryRowContext(ctx, c.q("SELECT image, version FROM hosts WHERE name = ?"), name).Scan(&image, &version)
	if errors.Is(err, sql.ErrNoRows) {
		return HostView{}, fmt.Errorf("%w: host %q", ErrNotFound, name)
	}
	if err != nil {
		return HostView{}, fmt.Errorf("read host %s: %w", name, err)
	}
	facts, err := c.versionFacts(ctx, channel)
	if err != nil {
		return HostView{}, err
	}
	var mine []versionFact
	for _, f := range facts {
		if f.image == image && f.version == version {
			mine = append(mine, f)
		}
	}
	with, args, state := c.fleetSQL(mine, staleBefore)
	var st int
	hv, err := scanHostView(c.db.QueryRowContext(ctx, c.q(with+"SELECT "+hostCols+", "+state+
		" FROM hosts h LEFT JOIN vf ON vf.image = h.image AND vf.version = h.version WHERE h.name = ?"), append(args, name)...), channel, &st)
	if errors.Is(err, sql.ErrNoRows) {
		return hv, fmt.Errorf("%w: host %q", ErrNotFound, name)
	}
	if err != nil {
		return hv, fmt.Errorf("read host %s: %w", name, err)
	}
	hv.State = HostStates[st]
	return hv, nil
}

// FleetCounts counts the fleet by state and by platform, in the database.
type FleetCounts struct {
	ByState    map[string]int `json:"by_state"`
	ByPlatform map[string]int `json:"by_platform"`
	Total      int            `json:"total"`
	// hosts with each condition, whatever their worst state
	Drifted, Behind, Revoked int
}

// FleetSummary counts hosts by state (against channel) and by platform.
// The database groups the fleet by the few columns a state depends on (a
// scan of one narrow index); the groups, at most a few per version, are
// classified here.
func (c *Catalog) FleetSummary(ctx context.Context, channel string, staleBefore time.Time) (FleetCounts, error) {
	out := FleetCounts{ByState: map[string]int{}, ByPlatform: map[string]int{PlatformOnprem: 0, PlatformAzure: 0}}
	for _, s := range HostStates {
		out.ByState[s] = 0
	}
	facts, err := c.versionFacts(ctx, channel)
	if err != nil {
		return out, err
	}
	type key struct{ image, version string }
	byVersion := map[key]versionFact{}
	for _, f := range facts {
		byVersion[key{f.image, f.version}] = f
	}
	groups, err := c.countGroups(ctx, FleetFilter{}, staleBefore)
	if err != nil {
		return out, err
	}
	for _, g := range groups {
		image, version, drifted, failed, source, platform, n, stale := g.image, g.version, g.drifted, g.failed, g.source, g.platform, g.n, g.stale
		f, known := byVersion[key{image, version}]
		add := func(st string, k int) {
			out.ByState[st] += k
		}
		switch {
		case known && f.revoked:
			add(HostRevoked, n)
		case failed == 1:
			add(HostError, n)
		case drifted == 1:
			add(HostDrifted, n)
		case known && f.behind > 0:
			add(HostBehind, n)
		case !known:
			add(HostUnknown, n)
		default:
			add(HostStale, stale)
			if source == "azure" {
				add(HostNoAgent, n-stale)
			} else {
				add(HostOK, n-stale)
			}
		}
		out.ByPlatform[platform] += n
		out.Total += n
		if drifted == 1 {
			out.Drifted += n
		}
		if known && f.behind > 0 {
			out.Behind += n
		}
		if known && f.revoked {
			out.Revoked += n
		}
	}
	return out, nil
}

type hostGroup struct {
	image, version, source, platform string
	drifted, failed                  int
	n, stale                         int
}

type factKey struct{ image, version string }

func factIndex(facts []versionFact) map[factKey]versionFact {
	m := make(map[factKey]versionFact, len(facts))
	for _, f := range facts {
		m[factKey{f.image, f.version}] = f
	}
	return m
}

// state is the group's state; splits says its stale hosts are "stale"
// instead (ok and no-agent groups).
func (g hostGroup) state(facts map[factKey]versionFact) (string, bool) {
	f, known := facts[factKey{g.image, g.version}]
	switch {
	case known && f.revoked:
		return HostRevoked, false
	case g.failed == 1:
		return HostError, false
	case g.drifted == 1:
		return HostDrifted, false
	case known && f.behind > 0:
		return HostBehind, false
	case !known:
		return HostUnknown, false
	case g.source == "azure":
		return HostNoAgent, true
	}
	return HostOK, true
}

// hostGroups groups the hosts matching where by the columns a state
// depends on, counting those last heard from before staleBefore. Without a
// name search it reads the counts table (countGroups); a search scans the
// narrow hosts_fleet index.
func (c *Catalog) hostGroups(ctx context.Context, f FleetFilter, where []string, args []any, staleBefore time.Time) ([]hostGroup, error) {
	if f.Search == "" {
		return c.countGroups(ctx, f, staleBefore)
	}
	q := "SELECT image, version, drifted, failed, source, platform, COUNT(*), SUM(CASE WHEN last_report < ? THEN 1 ELSE 0 END) FROM hosts"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := c.db.QueryContext(ctx, c.q(q+" GROUP BY image, version, drifted, failed, source, platform"), append([]any{fmtTime(staleBefore)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("group the fleet: %w", err)
	}
	defer rows.Close()
	var out []hostGroup
	for rows.Next() {
		var g hostGroup
		if err := rows.Scan(&g.image, &g.version, &g.drifted, &g.failed, &g.source, &g.platform, &g.n, &g.stale); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// countGroups reads the fleet's groups (image, version, drift, failure,
// source, platform) from the counts table the hosts triggers keep, and
// counts each group's stale hosts through the last_report index: a few
// rows, plus the stale hosts, whatever the fleet's size.
func (c *Catalog) countGroups(ctx context.Context, f FleetFilter, staleBefore time.Time) ([]hostGroup, error) {
	where, args := equalities(f.Image, f.Version, f.Platform)
	cond := ""
	if len(where) > 0 {
		cond = " AND " + strings.Join(where, " AND ")
	}
	type key struct {
		image, version, source, platform string
		drifted, failed                  int
	}
	stale := map[key]int{}
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT image, version, drifted, failed, source, platform, COUNT(*) FROM hosts
		WHERE last_report < ?`+cond+` GROUP BY image, version, drifted, failed, source, platform`), append([]any{fmtTime(staleBefore)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("count stale hosts: %w", err)
	}
	for rows.Next() {
		var k key
		var n int
		if err := rows.Scan(&k.image, &k.version, &k.drifted, &k.failed, &k.source, &k.platform, &n); err != nil {
			rows.Close()
			return nil, err
		}
		stale[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = c.db.QueryContext(ctx, c.q(`SELECT image, version, drifted, failed, source, platform, n FROM fleet_counts WHERE n > 0`+cond), args...)
	if err != nil {
		return nil, fmt.Errorf("count the fleet: %w", err)
	}
	defer rows.Close()
	var out []hostGroup
	for rows.Next() {
		var g hostGroup
		if err := rows.Scan(&g.image, &g.version, &g.drifted, &g.failed, &g.source, &g.platform, &g.n); err != nil {
			return nil, err
		}
		g.stale = stale[key{g.image, g.version, g.source, g.platform, g.drifted, g.failed}]
		out = append(out, g)
	}
	return out, rows.Err()
}

// HostsPerVersion counts the hosts reporting each version of image.
func (c *Catalog) HostsPerVersion(ctx context.Context, image string) (map[string]int, error) {
	rows, err := c.db.QueryContext(ctx, c.q("SELECT version, COUNT(*) FROM hosts WHERE image = ? GROUP BY version"), image)
	if err != nil {
		return nil, fmt.Errorf("count hosts of %s: %w", image, err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var v string
		var n int
		if err := rows.Scan(&v, &n); err != nil {
			return nil, err
		}
		out[v] = n
	}
	return out, rows.Err()
}
