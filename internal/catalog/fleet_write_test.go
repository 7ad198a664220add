package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"imgpipe/internal/testenv"
)

func TestReportHourSQLite(t *testing.T) { testReportHour(t, sqliteBackend()) }

func TestReportHourPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	testReportHour(t, backend{name: "postgres", newLocation: func(t *testing.T) string { return pg.NewDatabase(t) }})
}

// testReportHour: the indexed report_hour is always the hour of
// last_report, whichever way a report is written (a new host, a state or
// region change, a report that changes nothing indexed, a new hour); the
// stale hosts found through it are exactly those last heard from before
// the cut-off, at an hour's edge too; the counts follow. On PostgreSQL
// reports that change no indexed column are HOT updates.
func testReportHour(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c := openAt(t, loc)
	day := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	at := func(hhmm string) time.Time {
		d, err := time.ParseDuration(hhmm)
		if err != nil {
			t.Fatal(err)
		}
		return day.Add(d)
	}
	summary := func(drifted bool) json.RawMessage {
		b, _ := json.Marshal(map[string]any{"source": "agent", "drifted": drifted})
		return b
	}
	report := func(when, region string, drifted bool) {
		t.Helper()
		hs := []Host{{Name: "web-a", Platform: PlatformOnprem, Image: "web", Version: "1.0.0", Region: region, LastReport: at(when), DriftSummary: summary(drifted)},
			{Name: "web-b", Platform: PlatformOnprem, Image: "web", Version: "1.0.0", LastReport: at("11h"), DriftSummary: summary(false)}}
		if err := c.ReportHosts(ctx, hs); err != nil {
			t.Fatal(err)
		}
		var last, hour, reg string
		if err := c.db.QueryRowContext(ctx, c.q("SELECT last_report, report_hour, region FROM hosts WHERE name = ?"), "web-a").Scan(&last, &hour, &reg); err != nil {
			t.Fatal(err)
		}
		if last != fmtTime(at(when)) || hour != last[:13] {
			t.Fatalf("after a report at %s: last_report %s, report_hour %s", when, last, hour)
		}
		if region != "" && reg != region {
			t.Fatalf("region %q, want %q", reg, region)
		}
		if g, w := countsTable(t, c), groundTruth(t, c); fmt.Sprint(g) != fmt.Sprint(w) {
			t.Fatalf("after a report at %s: counts %v, hosts %v", when, g, w)
		}
	}
	stale := func(before string) int {
		t.Helper()
		gs, err := c.countGroups(ctx, FleetFilter{}, at(before))
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, g := range gs {
			n += g.stale
		}
		return n
	}
	report("12h10m", "", false) // new host
	report("12h40m", "", false) // nothing indexed changes
	report("12h50m", "", true)  // drift: a state change
	report("13h05m", "", true)  // a new hour
	report("13h20m", "eu-1", true)
	report("13h35m", "", true) // no region: the stored one stays
	for _, tc := range []struct {
		before string
		want   int // web-b (11:00) is stale from 11:00:00.000001 on
	}{{"10h", 0}, {"11h", 0}, {"11h1s", 1}, {"13h", 1}, {"13h35m", 1}, {"13h35m1s", 2}, {"14h", 2}} {
		if got := stale(tc.before); got != tc.want {
			t.Errorf("stale before %s: %d, want %d", tc.before, got, tc.want)
		}
	}
	if b.name != "postgres" {
		return
	}
	for i := range 20 {
		report(fmt.Sprintf("13h%dm", 40+i/2), "", true)
	}
	// the backends' statistics are flushed when they end
	c.Close()
	p := openAt(t, loc)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var upd, hot int
		if err := p.db.QueryRowContext(ctx, "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'hosts'").Scan(&upd, &hot); err != nil {
			t.Fatal(err)
		}
		// 20 + 5 updates of web-a, 25 of web-b; those that change an
		// indexed column (drift, hour, region: 3) are not HOT
		if upd >= 50 {
			t.Logf("%d updates of hosts, %d HOT", upd, hot)
			if hot < upd-5 {
				t.Fatalf("%d of %d updates of hosts were HOT, want all but those changing an indexed column", hot, upd)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("statistics show %d updates of hosts, want 50", upd)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
