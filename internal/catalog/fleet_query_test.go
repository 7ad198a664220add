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
		{Host{Name: "e1", Platform: PlatformOnprem, Image: "web", Version: "1.2.0", DriftSummary: []byte(`{"source":"agent","error":"no baseline"}`)}, HostError},
		{Host{Name: "d1", Platform: PlatformAzure, Image: "web", Version: "1.1.0", DriftSummary: []byte(`{"source":"agent","drifted":true}`)}, HostDrifted},
		{Host{Name: "d2", Platform: PlatformOnprem, Image: "db", Version: "2.0.0", DriftSummary: []byte(`{"source":"agent","drifted":true}`)}, HostDrifted},
		{Host{Name: "b1", Platform: PlatformOnprem, Image: "web", Version: "1.1.0", DriftSummary: []byte(`{"source":"agent"}`)}, HostBehind},
		{Host{Name: "u1", Platform: PlatformOnprem, Image: "web", Version: "9.9.9", DriftSummary: []byte(`{"source":"agent"}`)}, HostUnknown},
		{Host{Name: "u2", Platform: PlatformOnprem, DriftSummary: []byte(`{"source":"agent"}`)}, HostUnknown},
		{Host{Name: "s1", Platform: PlatformOnprem, Image: "web", Version: "1.2.0", LastReport: old, DriftSummary: []byte(`{"source":"agent"}`)}, HostStale},
		{Host{Name: "n1", Platform: PlatformAzure, Image: "web", Version: "1.3.0", DriftSummary: []byte(`{"source":"azure"}`)}, HostNoAgent},
		{Host{Name: "ok1", Platform: PlatformOnprem, Image: "web", Version: "1.2.0", DriftSummary: []byte(`{"source":"agent"}`)}, HostOK},
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
		{FleetFilter{State: HostOK, Limit: 2, Offset: 2}, "ok_3%"},
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
	if p, _ := c.FleetHosts(ctx, "prod", FleetFilter{State: HostOK, Limit: 2, StaleBefore: staleBefore}); p.Total != 3 {
		t.Errorf("paged total %d, want 3", p.Total)
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
