package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// testFleetQueries: paged, filtered, severity-sorted fleet queries and
// counts computed by the database agree with the whole-fleet Fleet view.
func testFleetQueries(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.SetRequirements(ctx, DefaultRequirementsImage, "prod", nil))
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0", "1.3.0"} {
		mustVersion(t, c, NewVersion{Image: "web", Version: v})
	}
	mustVersion(t, c, NewVersion{Image: "db", Version: "2.0.0"})
	_, err := c.Promote(ctx, PromoteRequest{Ref: Ref{"web", "1.2.0"}, Channel: "prod", By: "x"})
	must(err)
	_, err = c.Promote(ctx, PromoteRequest{Ref: Ref{"db", "2.0.0"}, Channel: "prod", By: "x"})
	must(err)
	_, err = c.Revoke(ctx, RevokeRequest{Ref: Ref{"web", "1.0.0"}, Reason: "cve", By: "x"})
	must(err)
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	old := now.Add(-48 * time.Hour)
	hosts := []struct {
		h    Host
		want string
	}{
		{Host{Name: "r1", Platform: PlatformOnprem, Image: "web", Version: "1.0.0", DriftSummary: []byte(`{"source":"agent","drifted":true}`)}, HostRevoked},
		{Host{Name: "e1", Platform: PlatformOnprem, Region: "paris", Image: "web", Version: "1.2.0", DriftSummary: []byte(`{"source":"agent","error":"no baseline"}`)}, HostError},
		{Host{Name: "d1", Platform: PlatformAzure, Image: "web", Version: "1.1.0", DriftSummary: []byte(`{"source":"agent","drifted":true}`)}, HostDrifted},
		{Host{Name: "d2", Platform: PlatformOnprem, Image: "db", Version: "2.0.0", DriftSummary: []byte(`{"source":"agent","drifted":true}`)}, HostDrifted},
		{Host{Name: "b1", Platform: PlatformOnprem, Image: "web", Version: "1.1.0", DriftSummary: []byte(`{"source":"agent"}`)}, HostBehind},
		{Host{Name: "u1", Platform: PlatformOnprem, Image: "web", Version: "9.9.9", DriftSummary: []byte(`{"source":"agent"}`)}, HostUnknown},
		{Host{Name: "u2", Platform: PlatformOnprem, DriftSummary: []byte(`{"source":"agent"}`)}, HostUnknown},
		{Host{Name: "s1", Platform: PlatformOnprem, Image: "web", Version: "1.2.0", LastReport: old, DriftSummary: []byte(`{"source":"agent"}`)}, HostStale},
		{Host{Name: "n1", Platform: PlatformAzure, Region: "westeurope", Image: "web", Version: "1.3.0", DriftSummary: []byte(`{"source":"azure"}`)}, HostNoAgent},
		{Host{Name: "ok1", Platform: PlatformOnprem, Region: "paris", Image: "web", Version: "1.2.0", DriftSummary: []byte(`{"source":"agent"}`)}, HostOK},
		{Host{Name: "ok2", Platform: PlatformOnprem, Image: "web", Version: "1.3.0", DriftSummary: []byte(`{"source":"agent"}`)}, HostOK},
		{Host{Name: "ok_3%", Platform: PlatformOnprem, Image: "db", Version: "2.0.0", DriftSummary: []byte(`{"source":"agent"}`)}, HostOK},
	}
	for _, h := range hosts {
		if h.h.LastReport.IsZero() {
			h.h.LastReport = now
		}
		must(c.ReportHost(ctx, h.h))
	}
	staleBefore := now.Add(-24 * time.Hour)
	all, err := c.FleetHosts(ctx, "prod", FleetFilter{StaleBefore: staleBefore, Limit: 1000})
	must(err)
	var got, want []string
	for _, h := range all.Hosts {
		got = append(got, h.Name+"="+h.State)
	}
	for _, h := range hosts {
		want = append(want, h.h.Name+"="+h.want)
	}
	if strings.Join(got, " ") != strings.Join(want, " ") || all.Total != len(hosts) {
		t.Fatalf("severity order:\n got %v\nwant %v (total %d)", got, want, all.Total)
	}
	// the figures agree with the whole-fleet view
	fleet, err := c.Fleet(ctx, "prod")
	must(err)
	byName := map[string]HostView{}
	for _, h := range all.Hosts {
		byName[h.Name] = h
	}
	for _, h := range fleet {
		q := byName[h.Name]
		if q.VersionsBehind != h.VersionsBehind || q.Revoked != h.Revoked || q.Unknown != h.Unknown || q.ChannelVersion != h.ChannelVersion {
			t.Errorf("%s: query %+v, Fleet %+v", h.Name, q, h)
		}
	}
	if r := byName["r1"]; r.VersionsBehind != 2 || !r.Revoked { // 1.1.0 and 1.2.0 lie between 1.0.0 and prod's 1.2.0
		t.Errorf("r1: %+v", r)
	}
	// filters and paging
	for _, tc := range []struct {
		f    FleetFilter
		want string
	}{
		{FleetFilter{State: HostDrifted}, "d1,d2"},
		{FleetFilter{State: HostDrifted, Image: "web"}, "d1"},
		{FleetFilter{Image: "web", Version: "1.1.0"}, "d1,b1"},
		{FleetFilter{Platform: PlatformAzure}, "d1,n1"},
		{FleetFilter{Search: "ok"}, "ok1,ok2,ok_3%"},
		{FleetFilter{Search: "_3%"}, "ok_3%"}, // LIKE wildcards are literal
		{FleetFilter{State: HostOK, Limit: 2}, "ok1,ok2"},
		{FleetFilter{State: HostOK, Limit: 2, After: FleetCursor{HostOK, "ok2"}}, "ok_3%"},
		{FleetFilter{State: HostOK, Limit: 2, Before: FleetCursor{HostOK, "ok_3%"}}, "ok1,ok2"},
		{FleetFilter{Limit: 3, After: FleetCursor{HostDrifted, "d1"}}, "d2,b1,u1"},
		{FleetFilter{Limit: 3, Before: FleetCursor{HostBehind, "b1"}}, "e1,d1,d2"},
		{FleetFilter{Region: "paris"}, "e1,ok1"},
		{FleetFilter{Region: "westeurope", State: HostNoAgent}, "n1"},
		{FleetFilter{State: HostStale}, "s1"},
	} {
		tc.f.StaleBefore = staleBefore
		p, err := c.FleetHosts(ctx, "prod", tc.f)
		must(err)
		var names []string
		for _, h := range p.Hosts {
			names = append(names, h.Name)
		}
		if strings.Join(names, ",") != tc.want {
			t.Errorf("%+v: %v, want %s", tc.f, names, tc.want)
		}
		if tc.f.Limit == 0 && p.Total != len(names) {
			t.Errorf("%+v: total %d", tc.f, p.Total)
		}
	}
	if p, _ := c.FleetHosts(ctx, "prod", FleetFilter{State: HostOK, Limit: 2, StaleBefore: staleBefore}); p.Total != 3 || p.Next != (FleetCursor{HostOK, "ok2"}) || !p.Prev.IsZero() {
		t.Errorf("paged total %d next %v prev %v, want 3, ok:ok2, none", p.Total, p.Next, p.Prev)
	}
	if p, _ := c.FleetHosts(ctx, "prod", FleetFilter{State: HostOK, Limit: 2, After: FleetCursor{HostOK, "ok2"}, StaleBefore: staleBefore}); !p.Next.IsZero() || p.Prev != (FleetCursor{HostOK, "ok_3%"}) {
		t.Errorf("last page: next %v prev %v, want none and ok:ok_3%%", p.Next, p.Prev)
	}
	// a region is kept when a report carries none, and counted
	must(c.ReportHost(ctx, Host{Name: "ok1", Platform: PlatformOnprem, Image: "web", Version: "1.2.0", LastReport: now, DriftSummary: []byte(`{"source":"agent"}`)}))
	if p, err := c.FleetHosts(ctx, "prod", FleetFilter{Region: "paris", StaleBefore: staleBefore}); err != nil || p.Total != 2 || p.ByState[HostOK] != 1 || p.ByState[HostError] != 1 || len(p.Hosts) != 2 || p.Hosts[1].Region != "paris" {
		t.Errorf("region paris after a report without one: %+v %v", p, err)
	}
	if _, err := c.FleetHosts(ctx, "prod", FleetFilter{After: FleetCursor{"bogus", "x"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad cursor: %v", err)
	}
	for _, bad := range []string{"x", "bogus:a", "ok:", ":a"} {
		if _, err := ParseFleetCursor(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseFleetCursor(%q): %v", bad, err)
		}
	}
	if cur, err := ParseFleetCursor("no-agent:a:b"); err != nil || cur != (FleetCursor{HostNoAgent, "a:b"}) || cur.String() != "no-agent:a:b" {
		t.Errorf("ParseFleetCursor round trip: %v %v", cur, err)
	}
	if _, err := c.FleetHosts(ctx, "prod", FleetFilter{State: "bogus"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("bad state: %v", err)
	}
	// counts in the database
	sum, err := c.FleetSummary(ctx, "prod", staleBefore)
	must(err)
	wantCounts := map[string]int{HostRevoked: 1, HostError: 1, HostDrifted: 2, HostBehind: 1, HostUnknown: 2, HostStale: 1, HostNoAgent: 1, HostOK: 3}
	if fmt.Sprint(sum.ByState) != fmt.Sprint(wantCounts) || sum.ByPlatform[PlatformAzure] != 2 || sum.ByPlatform[PlatformOnprem] != 10 || sum.Total != 12 {
		t.Errorf("summary %+v", sum)
	}
	// one host
	h, err := c.FleetHost(ctx, "prod", "b1", staleBefore)
	must(err)
	if h.State != HostBehind || h.VersionsBehind != 1 || h.ChannelVersion != "1.2.0" {
		t.Errorf("b1: %+v", h)
	}
	if h, err := c.FleetHost(ctx, "prod", "u2", staleBefore); err != nil || h.State != HostUnknown || !h.Unknown {
		t.Errorf("u2: %+v %v", h, err)
	}
	if _, err := c.FleetHost(ctx, "prod", "ghost", staleBefore); !errors.Is(err, ErrNotFound) {
		t.Errorf("ghost: %v", err)
	}
	per, err := c.HostsPerVersion(ctx, "web")
	must(err)
	if per["1.2.0"] != 3 || per["1.1.0"] != 2 || per["1.0.0"] != 1 {
		t.Errorf("hosts per version %v", per)
	}
	// an empty catalog answers too
	e := openAt(t, b.newLocation(t))
	if p, err := e.FleetHosts(ctx, "prod", FleetFilter{}); err != nil || p.Total != 0 || p.Hosts == nil {
		t.Errorf("empty: %+v %v", p, err)
	}
}

// testFleetPagingWalk walks every page of a fleet, forwards and then
// backwards, while its hosts keep reporting (without changing state) and
// new hosts join, sorting before the pages already read: each host there
// from the start is seen exactly once either way, and no host twice.
// (Paging by offset fails this: a host joining before the page read
// shifts the rest by one.)
func testFleetPagingWalk(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	if err := c.SetRequirements(ctx, DefaultRequirementsImage, "prod", nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		mustVersion(t, c, NewVersion{Image: "web", Version: v})
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: Ref{"web", "1.2.0"}, Channel: "prod", By: "x"}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	staleBefore := now.Add(-24 * time.Hour)
	regions := []string{"", "paris", "westeurope"}
	var orig []Host
	for i := 0; i < 240; i++ {
		h := Host{Name: fmt.Sprintf("h-%03d", i), Platform: PlatformOnprem, Image: "web", Version: []string{"1.1.0", "1.2.0", "1.2.0"}[i%3],
			Region: regions[i%len(regions)], LastReport: now, DriftSummary: []byte(`{"source":"agent"}`)}
		switch {
		case i%5 == 0:
			h.DriftSummary = []byte(`{"source":"agent","drifted":true}`)
		case i%7 == 0:
			h.Platform, h.DriftSummary = PlatformAzure, []byte(`{"source":"azure"}`)
		case i%11 == 0:
			h.LastReport = now.Add(-48 * time.Hour)
		}
		orig = append(orig, h)
	}
	for start := 0; start < len(orig); start += 100 {
		if err := c.ReportHosts(ctx, orig[start:min(start+100, len(orig))]); err != nil {
			t.Fatal(err)
		}
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() { // reports keep arriving: the same states, and newcomers
		var err error
		for i := 0; err == nil; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			h := orig[(i*37)%len(orig)]
			if h.LastReport.After(staleBefore) {
				h.LastReport = time.Now().UTC()
			}
			nh := Host{Name: fmt.Sprintf("a-new-%04d", i), Platform: PlatformOnprem, Image: "web", Version: "1.2.0", LastReport: time.Now().UTC(),
				DriftSummary: []byte([]string{`{"source":"agent"}`, `{"source":"agent","drifted":true}`}[i%2])}
			err = c.ReportHosts(ctx, []Host{h, nh})
		}
		done <- err
	}()
	walk := func(filter FleetFilter, forward bool) (seen map[string]int, pages int, last FleetPage) {
		seen = map[string]int{}
		for pages = 1; ; pages++ {
			p, err := c.FleetHosts(ctx, "prod", filter)
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Hosts) == 0 || len(p.Hosts) > filter.Limit {
				t.Fatalf("page %d has %d hosts (limit %d)", pages, len(p.Hosts), filter.Limit)
			}
			for i, h := range p.Hosts {
				seen[h.Name]++
				if i > 0 {
					a, b := p.Hosts[i-1], h
					if stateRank(a.State) > stateRank(b.State) || a.State == b.State && a.Name >= b.Name {
						t.Fatalf("page %d out of order: %s:%s before %s:%s", pages, a.State, a.Name, b.State, b.Name)
					}
				}
			}
			last = p
			next := p.Next
			if !forward {
				next = p.Prev
			}
			if next.IsZero() {
				return seen, pages, last
			}
			if forward {
				filter.After = next
			} else {
				filter.After, filter.Before = FleetCursor{}, next
			}
			time.Sleep(time.Millisecond) // let reports land between pages
		}
	}
	check := func(what string, seen map[string]int, skip map[string]bool) {
		t.Helper()
		for name, n := range seen {
			if n > 1 {
				t.Errorf("%s: %s seen %d times", what, name, n)
			}
		}
		for _, h := range orig {
			if !skip[h.Name] && seen[h.Name] != 1 {
				t.Errorf("%s: %s seen %d times, want once", what, h.Name, seen[h.Name])
			}
		}
	}
	seen, pages, last := walk(FleetFilter{StaleBefore: staleBefore, Limit: 9}, true)
	if pages < 240/9 {
		t.Fatalf("forward walk took %d pages", pages)
	}
	check("forward", seen, nil)
	if last.Prev.IsZero() {
		t.Fatal("the last page has no previous page")
	}
	lastPage := map[string]bool{}
	for _, h := range last.Hosts {
		lastPage[h.Name] = true
	}
	back, _, first := walk(FleetFilter{StaleBefore: staleBefore, Limit: 9, Before: last.Prev}, false)
	check("backward", back, lastPage)
	if !first.Prev.IsZero() || first.Next.IsZero() {
		t.Errorf("first page reached backwards: prev %v next %v", first.Prev, first.Next)
	}
	// one region, one state
	seen, _, _ = walk(FleetFilter{StaleBefore: staleBefore, Limit: 4, Region: "paris", State: HostOK}, true)
	want := 0
	for _, h := range orig {
		if h.Region == "paris" && h.DriftSummary != nil && string(h.DriftSummary) == `{"source":"agent"}` && h.LastReport.After(staleBefore) && h.Version == "1.2.0" {
			want++
			if seen[h.Name] != 1 {
				t.Errorf("paris ok: %s seen %d times", h.Name, seen[h.Name])
			}
		}
	}
	if len(seen) != want || want == 0 {
		t.Errorf("paris ok: %d hosts seen, want %d", len(seen), want)
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
