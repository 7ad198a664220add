package catalog

import (
	"context"
	"encoding/json"
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
	Region   string
	Search   string // substring of the host name
	// StaleBefore: hosts last heard from before it are stale.
	StaleBefore time.Time
	Limit       int // 0: 100; at most 10,000
	// After starts the page after this position (the Next of the page
	// before); Before ends it before this one (the Prev of the page
	// after). At most one of them; neither is the first page.
	After, Before FleetCursor
}

// FleetCursor is a position in the fleet's order (worst state first, then
// by name): the state and name of a host. Paging by position rather than
// by offset, a page costs the same anywhere in the fleet, and hosts that
// report meanwhile, or join, neither repeat nor shift the pages; a host
// whose state changes between two pages moves in the order and may be
// seen twice or not at all.
type FleetCursor struct {
	State string `json:"state"`
	Name  string `json:"name"`
}

// IsZero says the cursor is unset.
func (c FleetCursor) IsZero() bool { return c == FleetCursor{} }

// String is the cursor as URLs carry it: "state:name" ("" when unset).
func (c FleetCursor) String() string {
	if c.IsZero() {
		return ""
	}
	return c.State + ":" + c.Name
}

// ParseFleetCursor reads a cursor written by String ("" is the zero one).
func ParseFleetCursor(s string) (FleetCursor, error) {
	if s == "" {
		return FleetCursor{}, nil
	}
	st, name, ok := strings.Cut(s, ":")
	if !ok || stateRank(st) < 0 || name == "" || len(name) > 255 {
		return FleetCursor{}, fmt.Errorf("%w: cursor %q: use the one a page linked to (STATE:HOST)", ErrInvalid, clipText(s, 80))
	}
	return FleetCursor{State: st, Name: name}, nil
}

func clipText(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// FleetPage is a page of the fleet, worst state first, then by name.
type FleetPage struct {
	Hosts []HostView `json:"hosts"`
	Total int        `json:"total"` // hosts matching the filter
	Fleet int        `json:"fleet"` // hosts in the fleet, whatever the filter
	// ByState counts the hosts matching the filter but its state, by state
	ByState map[string]int `json:"by_state,omitempty"`
	// Next is the position to ask for the next page After; Prev the one
	// to ask for the previous page Before (zero: nothing that way).
	Next FleetCursor `json:"next,omitzero"`
	Prev FleetCursor `json:"prev,omitzero"`
}

func stateRank(s string) int {
	for i, st := range HostStates {
		if st == s {
			return i
		}
	}
	return -1
}

// hostViews reads the hosts named, with their state decided here from
// the row and the version facts (as the groups' states are): one look-up
// by key a host, in one statement.
func (c *Catalog) hostViews(ctx context.Context, names []string, facts map[factKey]versionFact, channel string, staleBefore time.Time) (map[string]HostView, error) {
	in, args := c.inList(names)
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT name, platform, image, version, resource_id, region, last_report, drift_summary, drifted, failed, source
		FROM hosts WHERE name `+in), args...)
	if err != nil {
		return nil, fmt.Errorf("read hosts: %w", err)
	}
	defer rows.Close()
	out := make(map[string]HostView, len(names))
	for rows.Next() {
		var hv HostView
		var last, summary string
		var g hostGroup
		if err := rows.Scan(&hv.Name, &hv.Platform, &hv.Image, &hv.Version, &hv.ResourceID, &hv.Region, &last, &summary, &g.drifted, &g.failed, &g.source); err != nil {
			return nil, err
		}
		hv.LastReport = parseTime(last)
		if summary != "" && summary != "{}" {
			hv.DriftSummary = json.RawMessage(summary)
		}
		hv.Channel = channel
		g.image, g.version = hv.Image, hv.Version
		st, splits := g.state(facts)
		if splits && last < fmtTime(staleBefore) {
			st = HostStale
		}
		hv.State = st
		if f, known := facts[factKey{hv.Image, hv.Version}]; known {
			hv.ChannelVersion, hv.Revoked, hv.VersionsBehind = f.channelVersion, f.revoked, f.behind
		} else {
			hv.Unknown = true
		}
		out[hv.Name] = hv
	}
	return out, rows.Err()
}

// FleetHosts returns a page of the fleet measured against channel: hosts
// matching f, worst state first (revoked, error, drifted, behind,
// unknown, stale, no-agent, ok), then by name, from f.After or up to
// f.Before, and how many match.
func (c *Catalog) FleetHosts(ctx context.Context, channel string, f FleetFilter) (FleetPage, error) {
	if f.State != "" && stateRank(f.State) < 0 {
		return FleetPage{}, fmt.Errorf("%w: state %q: use one of %s", ErrInvalid, f.State, strings.Join(HostStates, ", "))
	}
	for _, cur := range []FleetCursor{f.After, f.Before} {
		if !cur.IsZero() && (stateRank(cur.State) < 0 || cur.Name == "") {
			return FleetPage{}, fmt.Errorf("%w: cursor %q", ErrInvalid, cur.String())
		}
	}
	if !f.After.IsZero() && !f.Before.IsZero() {
		return FleetPage{}, fmt.Errorf("%w: a page starts after a host or ends before one, not both", ErrInvalid)
	}
	factList, err := c.versionFacts(ctx, channel)
	if err != nil {
		return FleetPage{}, err
	}
	// the search, beside the columns the groups fix (image, version,
	// platform, region among them)
	var search []string
	var searchArgs []any
	if f.Search != "" {
		search = []string{"name LIKE ? ESCAPE '!'"}
		esc := strings.NewReplacer("!", "!!", "%", "!%", "_", "!_").Replace(f.Search)
		searchArgs = []any{"%" + esc + "%"}
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 10000)
	// The fleet grouped by the columns a state depends on (the counts
	// table: a few rows), the groups matching the filter picked here (or,
	// with a search, one scan of the hosts_groups index); each group's
	// state is decided here, so counts need no row, and a page is read
	// state by state.
	all, err := c.countGroups(ctx, FleetFilter{}, f.StaleBefore)
	if err != nil {
		return FleetPage{}, err
	}
	groups := matching(all, f)
	if f.Search != "" {
		where, args := equalities(f.Image, f.Version, f.Platform, f.Region)
		if groups, err = c.searchGroups(ctx, append(where, search...), append(args, searchArgs...), f.StaleBefore); err != nil {
			return FleetPage{}, err
		}
	}
	facts := factIndex(factList)
	pg := c.pager(groups, facts, f, search, searchArgs)
	page := FleetPage{ByState: pg.counts}
	for _, g := range all {
		page.Fleet += g.n
	}
	for _, st := range pg.states {
		page.Total += pg.counts[st]
	}
	var keys []FleetCursor
	if f.Before.IsZero() {
		if keys, err = pg.read(ctx, f.After, true, limit+1); err != nil {
			return page, err
		}
		if len(keys) > limit {
			keys = keys[:limit]
			page.Next = keys[limit-1]
		}
		if !f.After.IsZero() {
			from := f.After
			if len(keys) > 0 {
				from = keys[0]
			}
			if before, err := pg.read(ctx, from, false, 1); err != nil {
				return page, err
			} else if len(before) > 0 {
				page.Prev = from
			}
		}
	} else {
		if keys, err = pg.read(ctx, f.Before, false, limit+1); err != nil {
			return page, err
		}
		if len(keys) > limit {
			keys = keys[1:]
			page.Prev = keys[0]
		}
		from := f.Before
		if len(keys) > 0 {
			from = keys[len(keys)-1]
		}
		if after, err := pg.read(ctx, from, true, 1); err != nil {
			return page, err
		} else if len(after) > 0 {
			page.Next = from
		}
	}
	page.Hosts = []HostView{}
	if len(keys) == 0 {
		return page, nil
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	byName, err := c.hostViews(ctx, names, facts, channel, f.StaleBefore)
	if err != nil {
		return page, err
	}
	for _, k := range keys {
		if hv, ok := byName[k.Name]; ok { // a host removed in between is left out
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

// fleetPager reads names of a filtered fleet in its order, state by
// state, each state's hosts as index ranges of its groups.
type fleetPager struct {
	c      *Catalog
	states []string // the states asked for, worst first
	parts  map[string][]groupCond
	counts map[string]int
	where  []string
	args   []any
}

func (c *Catalog) pager(groups []hostGroup, facts map[factKey]versionFact, f FleetFilter, where []string, args []any) *fleetPager {
	p := &fleetPager{c: c, parts: map[string][]groupCond{}, counts: map[string]int{}, where: where, args: args}
	stale := fmtTime(f.StaleBefore)
	for _, g := range groups {
		cond := "(image = ? AND version = ? AND drifted = ? AND failed = ? AND source = ? AND platform = ? AND region = ?"
		gargs := []any{g.image, g.version, g.drifted, g.failed, g.source, g.platform, g.region}
		st, splits := g.state(facts)
		if !splits {
			p.parts[st] = append(p.parts[st], groupCond{cond + ")", gargs})
			p.counts[st] += g.n
			continue
		}
		if g.stale > 0 {
			p.parts[HostStale] = append(p.parts[HostStale], groupCond{cond + " AND last_report < ?)", append(slices.Clone(gargs), stale)})
			p.counts[HostStale] += g.stale
		}
		if g.n > g.stale {
			p.parts[st] = append(p.parts[st], groupCond{cond + " AND last_report >= ?)", append(slices.Clone(gargs), stale)})
			p.counts[st] += g.n - g.stale
		}
	}
	for _, st := range HostStates {
		if f.State == "" || st == f.State {
			p.states = append(p.states, st)
		}
	}
	return p
}

// read returns up to want positions after from (forward) or before it
// (backward, returned in the fleet's order); a zero from is the start
// (forward) or the end (backward).
func (p *fleetPager) read(ctx context.Context, from FleetCursor, forward bool, want int) ([]FleetCursor, error) {
	states := slices.Clone(p.states)
	if !forward {
		slices.Reverse(states)
	}
	rank := stateRank(from.State)
	var out []FleetCursor
	for _, st := range states {
		if len(out) >= want {
			break
		}
		r := stateRank(st)
		if !from.IsZero() && (forward && r < rank || !forward && r > rank) {
			continue
		}
		if p.counts[st] == 0 {
			continue
		}
		bound := ""
		if !from.IsZero() && r == rank {
			bound = from.Name
		}
		q, qargs := pageQuery(p.parts[st], p.where, p.args, bound, forward, want-len(out))
		rows, err := p.c.db.QueryContext(ctx, p.c.q(q), qargs...)
		if err != nil {
			return nil, fmt.Errorf("list %s hosts: %w", st, err)
		}
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				rows.Close()
				return nil, err
			}
			out = append(out, FleetCursor{State: st, Name: name})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if !forward {
		slices.Reverse(out)
	}
	return out, nil
}

// pageQuery reads the first want names (in name order, or the last want
// in reverse order when !forward) of the hosts of parts that match where,
// past bound when it is set: each group is a range of the hosts_groups
// index in name order, cut at want, and the groups are merged by name.
// Past SQLite's limit of compound SELECTs it ORs the groups instead.
func pageQuery(parts []groupCond, where []string, args []any, bound string, forward bool, want int) (string, []any) {
	conds := slices.Clone(where)
	cargs := slices.Clone(args)
	op, order := ">", "name"
	if !forward {
		op, order = "<", "name DESC"
	}
	if bound != "" {
		conds = append(conds, "name "+op+" ?")
		cargs = append(cargs, bound)
	}
	and := ""
	if len(conds) > 0 {
		and = " AND " + strings.Join(conds, " AND ")
	}
	var qargs []any
	if len(parts) > 200 {
		var ors []string
		for _, p := range parts {
			ors = append(ors, p.cond)
			qargs = append(qargs, p.args...)
		}
		return "SELECT name FROM hosts WHERE (" + strings.Join(ors, " OR ") + ")" + and + " ORDER BY " + order + " LIMIT ?", append(append(qargs, cargs...), want)
	}
	subs := make([]string, len(parts))
	for i, p := range parts {
		subs[i] = fmt.Sprintf("SELECT name FROM (SELECT name FROM hosts WHERE %s%s ORDER BY %s LIMIT ?) g%d", p.cond, and, order, i)
		qargs = append(append(append(qargs, p.args...), cargs...), want)
	}
	return "SELECT name FROM (" + strings.Join(subs, " UNION ALL ") + ") page ORDER BY " + order + " LIMIT ?", append(qargs, want)
}

// FleetHost returns one host measured against channel (ErrNotFound): a
// lookup by key and the version facts, whatever the fleet's size.
func (c *Catalog) FleetHost(ctx context.Context, channel, name string, staleBefore time.Time) (HostView, error) {
	facts, err := c.versionFacts(ctx, channel)
	if err != nil {
		return HostView{}, err
	}
	hvs, err := c.hostViews(ctx, []string{name}, factIndex(facts), channel, staleBefore)
	if err != nil {
		return HostView{}, fmt.Errorf("read host %s: %w", name, err)
	}
	hv, ok := hvs[name]
	if !ok {
		return hv, fmt.Errorf("%w: host %q", ErrNotFound, name)
	}
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
	image, version, source, platform, region string
	drifted, failed                          int
	n, stale                                 int
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

// matching returns the groups whose columns match f's equalities.
func matching(groups []hostGroup, f FleetFilter) []hostGroup {
	var out []hostGroup
	for _, g := range groups {
		if (f.Image == "" || g.image == f.Image) && (f.Version == "" || g.version == f.Version) &&
			(f.Platform == "" || g.platform == f.Platform) && (f.Region == "" || g.region == f.Region) {
			out = append(out, g)
		}
	}
	return out
}

// searchGroups groups the hosts matching where (a name search among
// them) by the columns a state depends on, counting those last heard from
// before staleBefore: one scan of the narrow hosts_groups index.
func (c *Catalog) searchGroups(ctx context.Context, where []string, args []any, staleBefore time.Time) ([]hostGroup, error) {
	q := "SELECT image, version, drifted, failed, source, platform, region, COUNT(*), SUM(CASE WHEN last_report < ? THEN 1 ELSE 0 END) FROM hosts"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	rows, err := c.db.QueryContext(ctx, c.q(q+" GROUP BY image, version, drifted, failed, source, platform, region"), append([]any{fmtTime(staleBefore)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("group the fleet: %w", err)
	}
	defer rows.Close()
	var out []hostGroup
	for rows.Next() {
		var g hostGroup
		if err := rows.Scan(&g.image, &g.version, &g.drifted, &g.failed, &g.source, &g.platform, &g.region, &g.n, &g.stale); err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// countGroups reads the fleet's groups (image, version, drift, failure,
// source, platform) from the counts table the hosts triggers keep, and
// counts each group's stale hosts through the report_hour index: a few
// rows, plus the stale hosts, whatever the fleet's size.
func (c *Catalog) countGroups(ctx context.Context, f FleetFilter, staleBefore time.Time) ([]hostGroup, error) {
	where, args := equalities(f.Image, f.Version, f.Platform, f.Region)
	cond := ""
	if len(where) > 0 {
		cond = " AND " + strings.Join(where, " AND ")
	}
	type key struct {
		image, version, source, platform, region string
		drifted, failed                          int
	}
	stale := map[key]int{}
	rows, err := c.db.QueryContext(ctx, c.q(`SELECT image, version, drifted, failed, source, platform, region, COUNT(*) FROM hosts`+c.indexedBy("hosts_report_hour")+`
		WHERE report_hour <= ? AND last_report < ?`+cond+` GROUP BY image, version, drifted, failed, source, platform, region`), append([]any{reportHour(fmtTime(staleBefore)), fmtTime(staleBefore)}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("count stale hosts: %w", err)
	}
	for rows.Next() {
		var k key
		var n int
		if err := rows.Scan(&k.image, &k.version, &k.drifted, &k.failed, &k.source, &k.platform, &k.region, &n); err != nil {
			rows.Close()
			return nil, err
		}
		stale[k] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = c.db.QueryContext(ctx, c.q(`SELECT image, version, drifted, failed, source, platform, region, n FROM fleet_counts WHERE n > 0`+cond), args...)
	if err != nil {
		return nil, fmt.Errorf("count the fleet: %w", err)
	}
	defer rows.Close()
	var out []hostGroup
	for rows.Next() {
		var g hostGroup
		if err := rows.Scan(&g.image, &g.version, &g.drifted, &g.failed, &g.source, &g.platform, &g.region, &g.n); err != nil {
			return nil, err
		}
		g.stale = stale[key{g.image, g.version, g.source, g.platform, g.region, g.drifted, g.failed}]
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
