package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
)

func sqliteBackend() backend {
	return backend{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }}
}

// getPage fetches a dashboard page with the fixture's client.
func getPage(t *testing.T, f *fixture, path string, want int) string {
	t.Helper()
	resp, err := f.ts.Client().Get(f.ts.URL + path)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d, want %d:\n%s", path, resp.StatusCode, want, b)
	}
	return string(b)
}

// hrefs lists the links of a page.
func hrefs(page string) []string {
	var out []string
	for _, m := range regexp.MustCompile(`href="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		out = append(out, strings.ReplaceAll(m[1], "&amp;", "&"))
	}
	return out
}

func hasLink(page, href string) bool {
	for _, h := range hrefs(page) {
		if h == href {
			return true
		}
	}
	return false
}

// TestPagesLinkBothWays walks image -> version -> host and back through
// the links the pages carry, and checks what each says: the versions
// chart, lineage and tests of a version, the hosts running it, and a
// host's advice and rollout.
func TestPagesLinkBothWays(t *testing.T) {
	clk := &testClock{}
	f := newFixture(t, sqliteBackend(), Config{Now: clk.Now})
	seedCatalog(t, f.cat)
	ctx := context.Background()
	// web-3 was clean on 1.1.0 before it drifted; the fleet was snapshot then
	first := validReport("web-3")
	first.Version = "1.1.0"
	report(t, f, first)
	must(t, f.cat.SnapshotFleet(ctx, clk.Now()))
	clk.Advance(2 * time.Hour)
	for _, h := range []struct{ name, version string }{{"web-1", "1.2.0"}, {"web-2", "1.1.0"}, {"web-3", "1.1.0"}, {"web-old", "1.0.0"}} {
		r := validReport(h.name)
		r.Version = h.version
		if h.name == "web-3" {
			r.Drifted, r.Summary = true, drift.Summary{FilesChanged: 1}
		}
		report(t, f, r)
	}
	must(t, f.cat.SnapshotFleet(ctx, clk.Now()))
	ref := catalog.Ref{Image: "web", Version: "1.2.0"}
	_, err := f.cat.AddTestRun(ctx, catalog.TestRun{Ref: ref, Test: "boot", Runner: "qemu", Passed: true,
		Checks: []catalog.TestCheck{{Name: "ssh-up", Passed: true}}})
	must(t, err)
	ro, err := f.cat.StartRollout(ctx, ref, catalog.RolloutScaleSet, "/subscriptions/1111/resourceGroups/apps/providers/Microsoft.Compute/virtualMachineScaleSets/web")
	must(t, err)
	must(t, f.cat.UpdateRollout(ctx, ro.ID, catalog.RolloutRunning, "batch 1 of 2", []catalog.RolloutMember{{Member: "web-2", Version: "1.1.0", State: "upgrading"}}))

	images := getPage(t, f, "/images", 200)
	for _, want := range []string{`<svg`, `class="seg-current"`, `class="seg-behind"`, `class="seg-revoked"`, "web 1.1.0: 2 host(s) (behind)"} {
		if !strings.Contains(images, want) {
			t.Errorf("/images lacks %q", want)
		}
	}
	if !hasLink(images, "/images/web") || !hasLink(images, "/?image=web&version=1.1.0") {
		t.Errorf("/images links: %v", hrefs(images))
	}

	image := getPage(t, f, "/images/web", 200)
	if !hasLink(image, "/images/web/versions/1.2.0") || !hasLink(image, "/?image=web&state=drifted") || !strings.Contains(image, "4 hosts") {
		t.Errorf("/images/web links: %v", hrefs(image))
	}
	if !strings.Contains(image, "<th>Tested</th>") || !strings.Contains(image, `class="tested tested-none"`) {
		t.Errorf("/images/web has no Tested column (none ran):\n%s", image)
	}
	getPage(t, f, "/images/nope", 404)
	getPage(t, f, "/images/web/versions/9.9.9", 404)

	version := getPage(t, f, "/images/web/versions/1.1.0", 200)
	if !hasLink(version, "/images/web") || !hasLink(version, "/hosts/web-2") || !hasLink(version, "/hosts/web-3") || hasLink(version, "/hosts/web-1") {
		t.Errorf("version 1.1.0 links: %v", hrefs(version))
	}
	if i, j := strings.Index(version, `data-host="web-3"`), strings.Index(version, `data-host="web-2"`); i < 0 || j < 0 || i > j {
		t.Errorf("version page: the drifted host web-3 is not listed before web-2")
	}
	if !strings.Contains(version, "redeploy the 2 host(s) below to it") || !hasLink(version, "/images/web/versions/1.2.0") {
		t.Errorf("version 1.1.0 page does not point at the channel's version")
	}
	current := getPage(t, f, "/images/web/versions/1.2.0", 200)
	if strings.Contains(current, `id="channel-version"`) {
		t.Errorf("the channel's own version points at itself")
	}
	for _, want := range []string{"gallery_version", "northeurope", "westeurope", `<span class="ok">passed</span>`, "ssh-up", "batch 1 of 2", `<span class="badge chan">prod</span>`} {
		if !strings.Contains(current, want) {
			t.Errorf("version 1.2.0 page lacks %q", want)
		}
	}
	revoked := getPage(t, f, "/images/web/versions/1.0.0", 200)
	if !strings.Contains(revoked, "CVE-2026-0001") || !strings.Contains(revoked, "not tested") {
		t.Errorf("version 1.0.0 page lacks its revocation or test state")
	}

	host := getPage(t, f, "/hosts/web-2", 200)
	if !hasLink(host, "/images/web/versions/1.1.0") || !hasLink(host, "/images/web") || !hasLink(host, "/images/web/versions/1.2.0") {
		t.Errorf("host links: %v", hrefs(host))
	}
	for _, want := range []string{"1 version(s) behind: redeploy to 1.2.0 (channel prod)", "upgrading, runs 1.1.0", "batch 1 of 2",
		fmt.Sprintf("rollout %d of 1.2.0 is running (this host: upgrading)", ro.ID)} {
		if !strings.Contains(host, want) {
			t.Errorf("host page of web-2 lacks %q", want)
		}
	}
	old := getPage(t, f, "/hosts/web-old", 200)
	if !strings.Contains(old, "version 1.0.0 is revoked: redeploy to 1.2.0 (channel prod)") {
		t.Errorf("host page of web-old lacks the revocation advice")
	}
	drifted := getPage(t, f, "/hosts/web-3", 200)
	if !strings.Contains(drifted, "drifted from its image: redeploy to 1.2.0") {
		t.Errorf("host page of web-3 lacks the drift advice")
	}
	// its report history: drifted now, clean two hours before; drifted since the second report
	hist := regexp.MustCompile(`(?s)<table id="history">.*?</table>`).FindString(drifted)
	if rows := strings.Count(hist, "<tr class="); rows != 2 || strings.Index(hist, "drifted</span>") > strings.Index(hist, "clean") {
		t.Errorf("web-3 history (%d rows):\n%s", rows, hist)
	}
	if !strings.Contains(drifted, `id="drifted-since"`) || !strings.Contains(drifted, clk.Now().UTC().Format("2006-01-02T15")) {
		t.Errorf("web-3 page lacks when it started drifting")
	}
	if !strings.Contains(image, "Versions over the last week") || !strings.Contains(image, "Drift over the last week") || strings.Count(image, "<path class=") < 3 {
		t.Errorf("image page lacks its charts over time")
	}
	if ok := getPage(t, f, "/hosts/web-1", 200); strings.Contains(ok, `id="advice"`) {
		t.Errorf("a host on the channel's version without drift gets advice")
	}

	// the fleet page: filters in the URL, links to images and versions,
	// the channel measured against is one of them
	fleet := getPage(t, f, "/?image=web&state=behind", 200)
	if !strings.Contains(fleet, `id="drift-trend"`) || !strings.Contains(fleet, "now 1 drifted of 4 hosts") || !strings.Contains(fleet, `<path class="seg-revoked"`) {
		t.Errorf("fleet page lacks the drift chart")
	}
	if !hasLink(fleet, "/hosts/web-2") || hasLink(fleet, "/hosts/web-3") || !hasLink(fleet, "/images/web/versions/1.1.0") {
		t.Errorf("fleet behind links: %v", hrefs(fleet))
	}
	if !hasLink(fleet, "/?image=web&state=drifted") {
		t.Errorf("the drifted pill keeps the image filter: %v", hrefs(fleet))
	}
	// the summary counts the hosts the other filters match
	if one := getPage(t, f, "/?q=web-3", 200); !strings.Contains(one, ">all 1</a>") || !strings.Contains(one, ">drifted 1</a>") || strings.Contains(one, ">behind ") {
		t.Errorf("summary of the hosts named like web-3:\n%s", regexp.MustCompile(`(?s)<p class="legend" id="summary">.*?</p>`).FindString(one))
	}
	test := getPage(t, f, "/?channel=test", 200)
	if !strings.Contains(test, "measured against channel <code>test</code>") || !hasLink(test, "/?channel=test&state=unknown") && !hasLink(test, "/?channel=test&state=ok") {
		t.Errorf("fleet against channel test: %v", hrefs(test))
	}
	if _, err := http.NewRequest("GET", f.ts.URL+"/?channel="+strings.Repeat("x", 65), nil); err == nil {
		getPage(t, f, "/?channel="+strings.Repeat("x", 65), 400)
	}
	// a scale set seen by the Azure pull is a host whose resource id the rollout targets
	st, _ := jsonMarshal(HostState{Source: SourceAzure, AzureKind: "vmss", Location: "westeurope"})
	must(t, f.cat.ReportHost(ctx, catalog.Host{Name: "vmss-web", Platform: catalog.PlatformAzure, Image: "web", Version: "1.1.0", ResourceID: ro.Target, DriftSummary: st}))
	if vmss := getPage(t, f, "/hosts/vmss-web", 200); !strings.Contains(vmss, "scale set (1 instances)") || !strings.Contains(vmss, fmt.Sprintf("rollout %d of 1.2.0 is running", ro.ID)) {
		t.Errorf("the scale set's page lacks its rollout")
	}
}

// testPagingAndRegion: agents report their region through the intake; the
// dashboard and /api/hosts filter by it (and its summary counts only the
// region's hosts); both page by cursor: following the next links (rel=next,
// X-Next-Cursor) while reports arrive shows every host exactly once, and
// the previous links lead back to the first page. Offsets are refused.
func testPagingAndRegion(t *testing.T, b backend) {
	f := newFixture(t, b, Config{})
	seedCatalog(t, f.cat)
	ctx := context.Background()
	// a few agents through the intake, with a region; many hosts directly
	for i, region := range []string{"paris", "paris", "lyon", ""} {
		r := validReport(fmt.Sprintf("agent-%d", i))
		r.Region = region
		if i == 1 {
			r.Drifted, r.Summary = true, drift.Summary{FilesChanged: 2}
		}
		report(t, f, r)
	}
	var hosts []catalog.Host
	for i := 0; i < 117; i++ {
		h := catalog.Host{Name: fmt.Sprintf("host-%03d", i), Platform: "onprem", Image: "web", Version: []string{"1.1.0", "1.2.0", "1.0.0"}[i%3],
			Region: []string{"paris", "westeurope", ""}[i%3], DriftSummary: []byte(`{"source":"agent"}`)}
		if i%4 == 0 {
			h.DriftSummary = []byte(`{"source":"agent","drifted":true}`)
		}
		hosts = append(hosts, h)
	}
	must(t, f.cat.ReportHosts(ctx, hosts))
	all := len(hosts) + 4

	if h := getJSON[HostRow](t, f, "/api/hosts/agent-0", 200); h.Region != "paris" {
		t.Fatalf("agent-0's region %q, want paris", h.Region)
	}
	// a report without a region keeps the one recorded
	report(t, f, validReport("agent-0"))
	if h := getJSON[HostRow](t, f, "/api/hosts/agent-0", 200); h.Region != "paris" {
		t.Fatalf("agent-0's region after a report without one: %q", h.Region)
	}

	// the dashboard, page by page, while hosts report
	seen := map[string]int{}
	path, pages := "/", 0
	var last string
	for path != "" {
		pages++
		page := getPage(t, f, path, 200)
		for _, m := range regexp.MustCompile(`data-host="([^"]+)"`).FindAllStringSubmatch(page, -1) {
			seen[m[1]]++
		}
		last, path = path, ""
		for _, m := range regexp.MustCompile(`rel="next" href="([^"]+)"`).FindAllStringSubmatch(page, -1) {
			path = strings.ReplaceAll(m[1], "&amp;", "&")
		}
		must(t, f.cat.ReportHost(ctx, hosts[pages*7%len(hosts)]))
		if pages > 10 {
			t.Fatal("more than 10 pages of 50 for 121 hosts")
		}
	}
	if pages != 3 || len(seen) != all {
		t.Fatalf("%d pages, %d hosts seen, want 3 and %d", pages, len(seen), all)
	}
	for name, n := range seen {
		if n != 1 {
			t.Errorf("%s shown %d times", name, n)
		}
	}
	// and back: the previous links end on the first page
	path, pages = last, 0
	for {
		page := getPage(t, f, path, 200)
		m := regexp.MustCompile(`rel="prev" href="([^"]+)"`).FindStringSubmatch(page)
		if m == nil {
			if !strings.Contains(page, `data-host="host-002"`) { // revoked 1.0.0: the first row
				t.Fatalf("the page with no previous one is not the first:\n%s", page)
			}
			break
		}
		path = strings.ReplaceAll(m[1], "&amp;", "&")
		if pages++; pages > 5 {
			t.Fatal("previous links do not end")
		}
	}
	if pages != 2 {
		t.Errorf("%d previous pages from the last, want 2", pages)
	}

	// the region filter: listed, kept in links, and the summary counts it
	page := getPage(t, f, "/?region=paris", 200)
	wantParis := 2
	for _, h := range hosts {
		if h.Region == "paris" {
			wantParis++
		}
	}
	if !strings.Contains(page, fmt.Sprintf(">all %d<", wantParis)) || !strings.Contains(page, `name="region" value="paris"`) {
		t.Fatalf("region page: want all %d and the region field:\n%s", wantParis, page)
	}
	if !hasLink(page, "/?region=paris&state=drifted") {
		t.Errorf("the summary's drifted link loses the region: %v", hrefs(page))
	}
	cells := regexp.MustCompile(`<td class="host-region">(.*?)</td>`).FindAllStringSubmatch(page, -1)
	if len(cells) != min(wantParis, PageSize) {
		t.Errorf("%d region cells on the paris page, want %d", len(cells), min(wantParis, PageSize))
	}
	for _, m := range cells {
		if !strings.Contains(m[1], ">paris<") {
			t.Errorf("a row outside paris: %s", m[1])
		}
	}

	// the API: cursors in headers, every paris host once
	seen = map[string]int{}
	next := "/api/hosts?region=paris&limit=7"
	for calls := 0; next != ""; calls++ {
		resp, err := f.ts.Client().Get(f.ts.URL + next)
		must(t, err)
		var rows []HostRow
		must(t, json.NewDecoder(resp.Body).Decode(&rows))
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Total-Count") != fmt.Sprint(wantParis) {
			t.Fatalf("GET %s: %d, total %q", next, resp.StatusCode, resp.Header.Get("X-Total-Count"))
		}
		for _, r := range rows {
			seen[r.Name]++
			if r.Region != "paris" {
				t.Errorf("%s in %q", r.Name, r.Region)
			}
		}
		next = ""
		if c := resp.Header.Get("X-Next-Cursor"); c != "" {
			next = "/api/hosts?" + url.Values{"region": {"paris"}, "limit": {"7"}, "after": {c}}.Encode()
			if !strings.Contains(resp.Header.Get("Link"), `rel="next"`) {
				t.Errorf("no Link rel=next beside X-Next-Cursor: %q", resp.Header.Get("Link"))
			}
		}
		if calls > 10 {
			t.Fatal("the API's cursors do not end")
		}
	}
	if len(seen) != wantParis {
		t.Errorf("API walk saw %d paris hosts, want %d", len(seen), wantParis)
	}
	getJSON[apiError](t, f, "/api/hosts?offset=50", 400)
	getJSON[apiError](t, f, "/api/hosts?after=bogus", 400)
	getPage(t, f, "/?offset=50", 400)
}

// TestSeriesCache: the charts' cached snapshots always equal what the
// catalog holds for the window asked, as snapshots are added (one of them
// late, before the newest), the window moves on, and a wider window is
// asked for.
func TestSeriesCache(t *testing.T) {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	must(t, err)
	defer cat.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var sc seriesCache
	check := func(what, image string, since time.Time) {
		t.Helper()
		got, err := sc.series(ctx, cat, image, since)
		must(t, err)
		want, err := cat.FleetSeries(ctx, image, since)
		must(t, err)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: cached %v\nwant %v", what, got, want)
		}
	}
	snap := func(at time.Time, drifted bool) {
		t.Helper()
		h := catalog.Host{Name: fmt.Sprintf("h-%d", at.Unix()), Platform: "onprem", Image: "web", Version: "1.0.0", LastReport: at}
		if drifted {
			h.DriftSummary = []byte(`{"drifted":true}`)
		}
		must(t, cat.ReportHost(ctx, h))
		must(t, cat.SnapshotFleet(ctx, at))
	}
	snap(t0, false)
	snap(t0.Add(10*time.Minute), true)
	check("first read", "", t0.Add(-time.Hour))
	check("first read of an image", "web", t0.Add(-time.Hour))
	snap(t0.Add(20*time.Minute), false)
	check("a new snapshot", "", t0.Add(-time.Hour))
	snap(t0.Add(5*time.Minute), true) // late, within the re-read window
	check("a late snapshot", "", t0.Add(-time.Hour))
	check("a late snapshot of an image", "web", t0.Add(-time.Hour))
	check("the window moved on", "", t0.Add(7*time.Minute))
	check("a wider window again", "", t0.Add(-time.Hour))
}
