package catalog

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/testenv"
)

func TestFleetScaleSQLite(t *testing.T) { runFleetScale(t, sqliteBackend()) }

func TestFleetScalePostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	runFleetScale(t, backend{name: "postgres", newLocation: func(t *testing.T) string { return pg.NewDatabase(t) }})
}

func runFleetScale(t *testing.T, b backend) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"CountsFollowEveryWrite", testCountsFollowWrites},
		{"HostHistory", testHostHistory},
		{"Snapshots", testSnapshots},
		{"JobsRunOnceAcrossReplicas", testJobs},
		{"HeldJobOutlivesItsTTL", testHeldJob},
		{"AgentReportsAuthenticatedAsABatch", testAgentReports},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

// groundTruth counts the hosts table itself, the way the counts table must.
func groundTruth(t *testing.T, c *Catalog) map[string]int {
	return groups(t, c, "SELECT image, version, drifted, failed, source, platform, COUNT(*) FROM hosts GROUP BY image, version, drifted, failed, source, platform")
}

func countsTable(t *testing.T, c *Catalog) map[string]int {
	return groups(t, c, "SELECT image, version, drifted, failed, source, platform, n FROM fleet_counts WHERE n <> 0")
}

func groups(t *testing.T, c *Catalog, query string) map[string]int {
	t.Helper()
	rows, err := c.DB().Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var i, v, s, p string
		var d, f, n int
		if err := rows.Scan(&i, &v, &d, &f, &s, &p, &n); err != nil {
			t.Fatal(err)
		}
		out[fmt.Sprint(i, v, d, f, s, p)] = n
	}
	return out
}

// testCountsFollowWrites: the counts table the summary reads agrees with
// a count of the hosts after batches (a host twice in one batch, state
// changes, new hosts), single reports, removals and a raw INSERT such as
// a bulk loader's.
func testCountsFollowWrites(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	check := func(step string) {
		t.Helper()
		if got, want := countsTable(t, c), groundTruth(t, c); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: counts table %v, hosts %v", step, got, want)
		}
	}
	var batch []Host
	for i := 0; i < 300; i++ {
		batch = append(batch, Host{Name: fmt.Sprintf("h%03d", i), Platform: PlatformOnprem, Image: "web", Version: fmt.Sprintf("1.%d.0", i%3),
			DriftSummary: []byte(fmt.Sprintf(`{"source":"agent","drifted":%v}`, i%5 == 0))})
	}
	// h000 again in the same batch, now on another version, clean
	batch = append(batch, Host{Name: "h000", Platform: PlatformAzure, Image: "web", Version: "2.0.0", DriftSummary: []byte(`{"source":"azure"}`)})
	if err := c.ReportHosts(ctx, batch); err != nil {
		t.Fatal(err)
	}
	check("first batch")
	if h, _ := c.FleetHost(ctx, "prod", "h000", time.Time{}); h.Version != "2.0.0" || h.Platform != PlatformAzure {
		t.Fatalf("the batch's last report of h000 must win: %+v", h)
	}
	for i := range batch {
		batch[i].DriftSummary = []byte(`{"source":"agent","error":"no baseline"}`)
	}
	if err := c.ReportHosts(ctx, batch[:150]); err != nil {
		t.Fatal(err)
	}
	check("state changes")
	if err := c.ReportHost(ctx, Host{Name: "h299", Platform: PlatformOnprem, Image: "db", Version: "3.0.0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveHost(ctx, "h298"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DB().Exec(c.q("INSERT INTO hosts (name, platform, image, version, last_report, drifted, source) VALUES (?, 'onprem', 'web', '1.0.0', ?, 1, 'agent')"), "raw", c.nowText()); err != nil {
		t.Fatal(err)
	}
	check("single report, removal, raw insert")
	if err := c.ReportHosts(ctx, []Host{{Name: "ok", Platform: PlatformOnprem}, {Name: "bad", Platform: "mars"}}); err == nil {
		t.Fatal("a batch with an invalid host was accepted")
	}
	if _, err := c.FleetHost(ctx, "prod", "ok", time.Time{}); err == nil {
		t.Fatal("a batch with an invalid host stored part of it")
	}
	if err := c.ReportHosts(ctx, make([]Host, MaxReportBatch+1)); err == nil {
		t.Fatal("an oversized batch was accepted")
	}
	// the summary read from the counts agrees with a page-by-page count
	sum, err := c.FleetSummary(ctx, "prod", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	page, err := c.FleetHosts(ctx, "prod", FleetFilter{Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	byState := map[string]int{}
	for _, h := range page.Hosts {
		byState[h.State]++
	}
	for _, st := range HostStates {
		if sum.ByState[st] != byState[st] {
			t.Errorf("state %s: summary %d, hosts %d", st, sum.ByState[st], byState[st])
		}
	}
	if sum.Total != 300 || page.Total != 300 {
		t.Errorf("total %d / %d, want 300", sum.Total, page.Total)
	}
}

// testHostHistory: a row per state change, else one an hour; drifted
// since survives drifted reports and is reset by a clean one; at most
// HistoryPerHost rows a host; old rows are pruned.
func testHostHistory(t *testing.T, b backend) {
	ctx := context.Background()
	clk := newClock()
	c := openAt(t, b.newLocation(t), WithClock(clk.Now))
	rep := func(version string, drifted bool) {
		t.Helper()
		err := c.ReportHost(ctx, Host{Name: "web-1", Platform: PlatformOnprem, Image: "web", Version: version, LastReport: clk.Now(),
			DriftSummary: []byte(fmt.Sprintf(`{"source":"agent","drifted":%v}`, drifted))})
		if err != nil {
			t.Fatal(err)
		}
	}
	start := clk.Now()
	rep("1.0.0", false) // row 1: new host
	clk.Advance(5 * time.Minute)
	rep("1.0.0", false) // same state: none
	clk.Advance(5 * time.Minute)
	rep("1.0.0", true) // row 2: drifted
	driftAt := clk.Now()
	clk.Advance(5 * time.Minute)
	rep("1.0.0", true) // none
	if s, err := c.DriftedSince(ctx, "web-1"); err != nil || !s.Equal(driftAt) {
		t.Fatalf("drifted since %v (%v), want %v", s, err, driftAt)
	}
	clk.Advance(time.Hour)
	rep("1.0.0", true) // row 3: an hour since the last row
	clk.Advance(time.Minute)
	rep("1.1.0", false) // row 4: redeployed, clean
	if s, _ := c.DriftedSince(ctx, "web-1"); !s.IsZero() {
		t.Fatalf("drifted since %v after a clean report", s)
	}
	hist, err := c.HostHistory(ctx, "web-1", time.Time{}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range hist {
		got = append(got, fmt.Sprintf("%s/%v@%s", r.Version, r.Drifted, r.At.Sub(start)))
	}
	want := []string{"1.1.0/false@1h16m0s", "1.0.0/true@1h15m0s", "1.0.0/true@10m0s", "1.0.0/false@0s"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("history %v, want %v", got, want)
	}
	if _, err := c.DriftedSince(ctx, "ghost"); err == nil {
		t.Fatal("drifted since of an unknown host")
	}
	// a host flapping in one batch keeps at most HistoryPerHost rows
	var flaps []Host
	for i := 0; i < MaxReportBatch; i++ {
		clk.Advance(time.Second)
		flaps = append(flaps, Host{Name: "web-1", Platform: PlatformOnprem, Image: "web", Version: "1.1.0", LastReport: clk.Now(),
			DriftSummary: []byte(fmt.Sprintf(`{"source":"agent","drifted":%v}`, i%2 == 0))})
	}
	for range 2 {
		for i := range flaps {
			flaps[i].LastReport = flaps[i].LastReport.Add(time.Hour)
		}
		if err := c.ReportHosts(ctx, flaps); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := c.DB().QueryRow(c.q("SELECT COUNT(*) FROM host_reports WHERE host = ?"), "web-1").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != HistoryPerHost {
		t.Fatalf("%d history rows, want at most %d", n, HistoryPerHost)
	}
	pruned, err := c.PruneFleetHistory(ctx, clk.Now().Add(HistoryRetention+3*time.Hour))
	if err != nil || pruned != int64(HistoryPerHost) {
		t.Fatalf("pruned %d (%v), want %d", pruned, err, HistoryPerHost)
	}
}

// testSnapshots: one snapshot per instant whoever takes it, read back as
// a series per image or for the fleet.
func testSnapshots(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	t0 := time.Date(2026, 3, 1, 12, 2, 0, 0, time.UTC)
	var hs []Host
	for i := 0; i < 10; i++ {
		hs = append(hs, Host{Name: fmt.Sprintf("h%d", i), Platform: PlatformOnprem, Image: "web", Version: "1.0.0", DriftSummary: []byte(`{"source":"agent"}`)})
	}
	hs = append(hs, Host{Name: "db", Platform: PlatformOnprem, Image: "db", Version: "2.0.0", DriftSummary: []byte(`{"source":"agent","drifted":true}`)})
	if err := c.ReportHosts(ctx, hs); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapshotFleet(ctx, t0); err != nil {
		t.Fatal(err)
	}
	// five web hosts move to 1.2.0 before a second replica snapshots the
	// same bucket: the point keeps the first moment (10 hosts on 1.0.0),
	// not a mix of both (15 web hosts)
	moved := append([]Host(nil), hs[5:10]...)
	for i := range moved {
		moved[i].Version = "1.2.0"
	}
	if err := c.ReportHosts(ctx, moved); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapshotFleet(ctx, t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportHosts(ctx, hs[5:10]); err != nil { // back on 1.0.0
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		hs[i].Version, hs[i].DriftSummary = "1.1.0", []byte(`{"source":"agent","drifted":true}`)
	}
	if err := c.ReportHosts(ctx, hs[:3]); err != nil {
		t.Fatal(err)
	}
	if err := c.SnapshotFleet(ctx, t0.Add(SnapshotEvery)); err != nil {
		t.Fatal(err)
	}
	web, err := c.FleetSeries(ctx, "web", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(web) != 2 || web[0].Hosts != 10 || web[0].Versions["1.0.0"] != 10 || len(web[0].Versions) != 1 || web[0].Drifted != 0 || web[1].Drifted != 3 || web[1].Versions["1.1.0"] != 3 || web[1].Versions["1.0.0"] != 7 ||
		!web[0].At.Equal(t0.Truncate(SnapshotEvery)) {
		t.Fatalf("web series %+v", web)
	}
	all, err := c.FleetSeries(ctx, "", t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 || all[0].Hosts != 11 || all[0].Drifted != 4 {
		t.Fatalf("fleet series since the second snapshot %+v", all)
	}
}

// testJobs: a periodic job claimed by one holder at a time, again only
// after its interval, and by another holder once a dead holder's claim
// has expired.
func testJobs(t *testing.T, b backend) {
	ctx := context.Background()
	clk := newClock()
	loc := b.newLocation(t)
	r1, r2 := openAt(t, loc, WithClock(clk.Now)), openAt(t, loc, WithClock(clk.Now))
	claim := func(c *Catalog, holder string, want bool) {
		t.Helper()
		ok, err := c.ClaimJob(ctx, "azure-pull", holder, 10*time.Minute, time.Minute)
		if err != nil || ok != want {
			t.Fatalf("%s claims: %v %v, want %v", holder, ok, err, want)
		}
	}
	claim(r1, "r1", true)
	claim(r2, "r2", false) // r1 runs it
	if err := r1.FinishJob(ctx, "azure-pull", "r1"); err != nil {
		t.Fatal(err)
	}
	claim(r2, "r2", false) // ran just now
	clk.Advance(10 * time.Minute)
	claim(r2, "r2", true)
	clk.Advance(30 * time.Minute) // r2 died holding it: its claim expired
	claim(r1, "r1", true)
	if err := r2.FinishJob(ctx, "azure-pull", "r2"); err != nil { // late: changes nothing
		t.Fatal(err)
	}
	claim(r2, "r2", false)
}

// testHeldJob: a held claim outlives its short ttl while its holder
// lives, and a holder whose claim was taken over is told to stop.
func testHeldJob(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	r1, r2 := openAt(t, loc), openAt(t, loc)
	const ttl = 300 * time.Millisecond
	claim := func(c *Catalog, holder string, want bool) {
		t.Helper()
		ok, err := c.ClaimJob(ctx, "azure-pull", holder, 0, ttl)
		if err != nil || ok != want {
			t.Fatalf("%s claims: %v %v, want %v", holder, ok, err, want)
		}
	}
	claim(r1, "r1", true)
	held, stop := r1.HoldJob(ctx, "azure-pull", "r1", ttl)
	time.Sleep(4 * ttl)
	claim(r2, "r2", false) // renewed: still r1's
	if held.Err() != nil {
		t.Fatalf("a held claim was lost: %v", context.Cause(held))
	}
	stop()
	time.Sleep(2 * ttl) // r1 as if it died: no renewals
	claim(r2, "r2", true)
	late, stop := r1.HoldJob(ctx, "azure-pull", "r1", ttl)
	defer stop()
	select {
	case <-late.Done():
		if !errors.Is(context.Cause(late), ErrJobLost) {
			t.Fatalf("cause %v, want ErrJobLost", context.Cause(late))
		}
	case <-time.After(10 * ttl):
		t.Fatal("a holder whose claim was taken over was not stopped")
	}
	if ok, err := r1.RenewJob(ctx, "azure-pull", "r1", ttl); ok || err != nil {
		t.Fatalf("renew another's claim: %v %v", ok, err)
	}
}

// testAgentReports: one batch with a right, a foreign and an unknown
// credential stores only the report whose credential is its host's.
func testAgentReports(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	a, bb := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for host, d := range map[string]string{"web-1": a, "web-2": bb} {
		if err := c.EnrollHost(ctx, host, d); err != nil {
			t.Fatal(err)
		}
	}
	h := func(name string) Host {
		return Host{Name: name, Platform: PlatformOnprem, Image: "web", Version: "1.0.0"}
	}
	owners, err := c.RecordAgentReports(ctx, []AgentReport{
		{CredentialSHA256: bb, Host: h("web-1")},                      // web-2's credential
		{CredentialSHA256: strings.ToUpper(a), Host: h("web-1")},      // its own
		{CredentialSHA256: strings.Repeat("c", 64), Host: h("web-3")}, // nobody's
	})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(owners, []string{"web-2", "web-1", ""}) {
		t.Fatalf("owners %q", owners)
	}
	hs, err := c.Hosts(ctx, HostFilter{})
	if err != nil || len(hs) != 1 || hs[0].Name != "web-1" {
		t.Fatalf("stored %+v (%v), want web-1 only", hs, err)
	}
}
