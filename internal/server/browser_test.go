package server

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/oauth2-proxy/mockoidc"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
	"imgpipe/internal/testenv"
)

// TestDashboardInBrowser signs in to a server that requires it (through a
// local OIDC provider) in headless Chromium, checks the fleet table and a
// host's drift detail, walks the triage flow (drifted hosts of one image ->
// a host -> its version -> the image, and back), signs out, and writes
// screenshots to testdata/out (or $IMGPIPE_SCREENSHOTS) for review.
func TestDashboardInBrowser(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium")
	idp := startOIDC(t)
	clk := &testClock{}
	f := oidcFixture(t, idp, clk, func(o *OIDCConfig) { o.AllowedGroups = []string{"fleet-readers"} })
	ctx := context.Background()
	must(t, f.cat.SnapshotFleet(ctx, clk.Now().Add(-3*time.Hour)))

	// real agents: one clean on the channel's version, one drifted and behind
	for _, a := range []struct {
		host, version string
		drifted       bool
	}{{"web-prod-1", "1.2.0", false}, {"web-prod-2", "1.1.0", true}} {
		ag := newAgent(t, f, agentTree(t, "web", a.version, a.drifted), a.host, testToken)
		if _, err := ag.RunOnce(ctx, drift.Full); err != nil {
			t.Fatal(err)
		}
	}
	// a host on a revoked version with file and package drift
	r := validReport("web-legacy")
	r.Version, r.Region = "1.0.0", "paris-dc1"
	r.Drifted, r.Summary = true, drift.Summary{FilesChanged: 2, Packages: 1}
	r.Changes = []agent.Change{
		{Area: "file", Kind: "changed", Name: "etc/ssh/sshd_config", Detail: "content, mode (0644 -> 0666)"},
		{Area: "file", Kind: "changed", Name: "etc/sudoers.d/<b>ops</b>", Detail: "content"},
		{Area: "package", Kind: "changed", Name: "dpkg:openssl:amd64", Detail: "3.0.11-1 -> 3.0.13-1"},
	}
	report(t, f, r)
	db := validReport("db-1")
	db.Image, db.Version = "db", "2.0.0"
	report(t, f, db)
	must(t, f.cat.SnapshotFleet(ctx, clk.Now().Add(-2*time.Hour)))
	// a drifted host of another image: the triage filter leaves it out
	db.Host, db.Drifted, db.Summary = "db-2", true, drift.Summary{FilesAdded: 1}
	db.Changes = []agent.Change{{Area: "file", Kind: "added", Name: "var/lib/db/dump.sh"}}
	report(t, f, db)
	// an Azure VM seen only through the Azure pull
	st, _ := jsonMarshal(HostState{Source: SourceAzure, AzureKind: "vm", Location: "westeurope", ImageResolved: "catalog copy",
		ImageRef: "/subscriptions/1111/resourceGroups/apps/providers/Microsoft.Compute/galleries/gal/images/web/versions/1.1.0"})
	if err := f.cat.ReportHost(ctx, catalog.Host{Name: "vm-azure-7", Platform: catalog.PlatformAzure, Region: "westeurope", Image: "web", Version: "1.1.0",
		ResourceID: "/subscriptions/1111/resourceGroups/apps/providers/Microsoft.Compute/virtualMachines/vm-azure-7", DriftSummary: st}); err != nil {
		t.Fatal(err)
	}
	must(t, f.cat.SnapshotFleet(ctx, clk.Now()))
	idp.QueueUser(&mockoidc.MockUser{Subject: "ops-1", Email: "ops@contoso.example", EmailVerified: true, PreferredUsername: "ops@contoso.example", Groups: []string{"fleet-readers"}})

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// pages restored from the back-forward cache are not seen by
		// chromedp's DOM tracking; back then reloads, as without a cache
		chromedp.Flag("disable-features", "BackForwardCache"),
		chromedp.Flag("ignore-certificate-errors", true), // the test server's own certificate
		chromedp.WindowSize(1400, 900),
	}
	actx, cancel := chromedp.NewExecAllocator(ctx, opts...)
	defer cancel()
	bctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	bctx, cancel = context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	list := func(expr string) []string {
		t.Helper()
		v, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	// quality 100 makes a PNG
	shot := func() []byte {
		t.Helper()
		b, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		return b
	}

	at := func() (string, error) {
		return chromedp.Run(bctx, chromedp.Evaluate[string](`location.pathname + location.search`))
	}
	where := func() string {
		t.Helper()
		v, err := at()
		must(t, err)
		return v
	}
	// follow clicks sel and waits until the browser is at want (path and
	// query). Asked while the click's navigation replaces the page, the
	// browser may answer "Inspected target navigated or closed": that is
	// asked again, until the deadline.
	follow := func(sel, want string) {
		t.Helper()
		do("click "+sel, chromedp.Click(chromedp.CSS(sel)))
		deadline := time.Now().Add(20 * time.Second)
		for {
			v, err := at()
			if err == nil && v == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after clicking %s the browser is at %q (%v), want %s", sel, v, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		do("load "+want, chromedp.WaitReady(chromedp.CSS(`footer, main`)))
	}

	// signing in: the dashboard sends the browser to the provider and back
	do("sign in and load the fleet page", chromedp.Navigate(f.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#fleet tbody tr`)))
	if at, who := where(), text(`#who`); at != "/" || !strings.Contains(who, "ops@contoso.example") {
		t.Errorf("after sign-in at %s as %q", at, who)
	}
	title, err := chromedp.Run(bctx, chromedp.Title())
	must(t, err)
	hosts := list(`Array.from(document.querySelectorAll('#fleet tbody td.host')).map(td => td.textContent.trim())`)
	// worst first: revoked, drifted, behind, then ok by name
	if want := "web-legacy,db-2,web-prod-2,vm-azure-7,db-1,web-prod-1"; strings.Join(hosts, ",") != want {
		t.Errorf("fleet rows %v, want %s", hosts, want)
	}
	legacyState, legacyRevoked := text(`tr[data-host="web-legacy"] .badge`), text(`tr[data-host="web-legacy"] td.revoked`)
	if !strings.Contains(title, "fleet") || legacyState != "revoked" || legacyRevoked != "yes" {
		t.Errorf("title %q, web-legacy state %q revoked %q", title, legacyState, legacyRevoked)
	}
	if azureCells := text(`tr[data-host="vm-azure-7"]`); !strings.Contains(azureCells, "azure") || !strings.Contains(azureCells, "no agent") || !strings.Contains(azureCells, "behind") {
		t.Errorf("azure row: %q", azureCells)
	}
	rowStates := list(`Array.from(document.querySelectorAll('#fleet tbody tr')).map(tr => tr.dataset.host + '=' + tr.querySelector('.badge').textContent + '/' + tr.querySelector('td.behind').textContent)`)
	if want := "web-legacy=revoked/2,db-2=drifted/0,web-prod-2=drifted/1,vm-azure-7=behind/1,db-1=ok/0,web-prod-1=ok/0"; strings.Join(rowStates, ",") != want {
		t.Errorf("row states %v, want %s", rowStates, want)
	}
	fleetPNG := shot()

	// triage: the summary's "drifted" count filters the table (in the URL)
	do("filter to drifted", chromedp.Click(chromedp.CSS(`#summary a.st-drifted`)), chromedp.WaitVisible(chromedp.CSS(`#summary a.st-drifted.current`)))
	if got := list(`Array.from(document.querySelectorAll('#fleet tbody td.host')).map(td => td.textContent.trim())`); strings.Join(got, ",") != "db-2,web-prod-2" {
		t.Errorf("drifted filter shows %v", got)
	}
	loc, err := chromedp.Run(bctx, chromedp.Evaluate[string](`location.search`))
	must(t, err)
	if loc != "?state=drifted" {
		t.Errorf("filter not in the URL: %q", loc)
	}
	driftedPNG := shot()
	do("back to all", chromedp.Navigate(f.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#fleet tbody tr`)))

	// follow the link to the drift detail of web-legacy
	do("open web-legacy", chromedp.Click(chromedp.CSS(`tr[data-host="web-legacy"] td.host a`)), chromedp.WaitVisible(chromedp.CSS(`#changes`)))
	if heading, image := text(`h1`), text(`#image`); !strings.HasPrefix(heading, "web-legacy") || !strings.Contains(image, "web 1.0.0") {
		t.Errorf("host page heading %q image %q", heading, image)
	}
	changes := list(`Array.from(document.querySelectorAll('#changes tbody tr')).map(tr => Array.from(tr.cells).map(c => c.textContent).join('|'))`)
	want := []string{
		"file|changed|etc/ssh/sshd_config|content, mode (0644 -> 0666)",
		"file|changed|etc/sudoers.d/<b>ops</b>|content",
		"package|changed|dpkg:openssl:amd64|3.0.11-1 -> 3.0.13-1",
	}
	if strings.Join(changes, "\n") != strings.Join(want, "\n") {
		t.Errorf("changes:\n%s\nwant:\n%s", strings.Join(changes, "\n"), strings.Join(want, "\n"))
	}
	hostPNG := shot()

	// the drift detail of a real agent's report
	do("open web-prod-2", chromedp.Navigate(f.ts.URL+"/hosts/web-prod-2"), chromedp.WaitVisible(chromedp.CSS(`#changes`)))
	got := strings.Join(list(`Array.from(document.querySelectorAll('#changes tbody tr')).map(tr => tr.cells[1].textContent + ' ' + tr.cells[2].textContent)`), ",")
	for _, w := range []string{"added srv/app/backdoor.sh", "removed srv/app/conf-1.ini", "changed srv/app/conf-0.ini"} {
		if !strings.Contains(got, w) || strings.Count(got, ",") != 2 {
			t.Errorf("web-prod-2 changes %q, want %q once among 3", got, w)
		}
	}
	// the triage flow, by clicks: the drifted hosts of image web, one of
	// them, its version, the image, and back
	do("fleet page", chromedp.Navigate(f.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#fleet tbody tr`)))
	if n := list(`Array.from(document.querySelectorAll('#drift-trend svg path')).map(p => p.getAttribute('class'))`); len(n) < 2 {
		t.Errorf("drift chart areas: %v", n)
	}
	follow(`tr[data-host="web-prod-2"] td.image a`, "/?image=web")
	if pill := text(`#summary a.st-drifted`); pill != "drifted 1" {
		t.Errorf("drifted hosts of web in the summary: %q (db-2 counted?)", pill)
	}
	follow(`#summary a.st-drifted`, "/?image=web&state=drifted")
	if got := list(`Array.from(document.querySelectorAll('#fleet tbody td.host')).map(td => td.textContent.trim())`); strings.Join(got, ",") != "web-prod-2" {
		t.Errorf("drifted hosts of web: %v", got)
	}
	triagePNG := shot()
	follow(`tr[data-host="web-prod-2"] td.host a`, "/hosts/web-prod-2")
	if advice := text(`#advice`); !strings.Contains(advice, "redeploy to 1.2.0") {
		t.Errorf("web-prod-2 advice: %q", advice)
	}
	if hist := list(`Array.from(document.querySelectorAll('#history tbody tr')).map(tr => tr.cells[3].textContent)`); len(hist) != 1 || hist[0] != "drifted" {
		t.Errorf("web-prod-2 history: %v", hist)
	}
	triageHostPNG := shot()
	follow(`#version-link`, "/images/web/versions/1.1.0")
	if h, hostsOf := text(`h1`), list(`Array.from(document.querySelectorAll('#version-hosts td.host')).map(td => td.textContent.trim())`); !strings.Contains(h, "web 1.1.0") || strings.Join(hostsOf, ",") != "web-prod-2,vm-azure-7" {
		t.Errorf("version page %q lists %v", h, hostsOf)
	}
	versionPNG := shot()
	follow(`#image-link`, "/images/web")
	if bars := list(`Array.from(document.querySelectorAll('figure.chart rect')).map(r => r.querySelector('title').textContent)`); len(bars) != 3 {
		t.Errorf("image chart bars: %v", bars)
	}
	imagePNG := shot()
	// the browser's back button
	if _, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`history.back(), true`)); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(20 * time.Second); where() != "/images/web/versions/1.1.0"; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("back: at %s", where())
		}
	}
	do("back to the version", chromedp.WaitVisible(chromedp.CSS(`#version-hosts`)))
	follow(`#version-hosts tr[data-host="web-prod-2"] a`, "/hosts/web-prod-2")
	if h := text(`h1`); !strings.HasPrefix(h, "web-prod-2") {
		t.Errorf("back on the host page: %q", h)
	}

	do("open images", chromedp.Navigate(f.ts.URL+"/images"), chromedp.WaitVisible(chromedp.CSS(`table.versions`)))
	if row := text(`#image-web table.versions tbody tr`); !strings.Contains(row, "northeurope") || !strings.Contains(row, "prod") {
		t.Errorf("images page first version row: %q", row)
	}
	imagesPNG := shot()

	// by region: a row's region is a link that filters the table, kept in
	// the URL and the filter form, and the summary counts that region
	do("fleet page", chromedp.Navigate(f.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#fleet tbody tr`)))
	if reg := text(`tr[data-host="web-legacy"] td.host-region`); reg != "paris-dc1" {
		t.Errorf("web-legacy's region (from its agent) %q", reg)
	}
	follow(`tr[data-host="vm-azure-7"] td.host-region a`, "/?region=westeurope")
	if got, all := list(`Array.from(document.querySelectorAll('#fleet tbody td.host')).map(td => td.textContent.trim())`), text(`#summary a.current`); strings.Join(got, ",") != "vm-azure-7" || all != "all 1" {
		t.Errorf("hosts in westeurope: %v, summary %q", got, all)
	}
	if v := list(`[document.querySelector('#filter input[name=region]').value]`); len(v) != 1 || v[0] != "westeurope" {
		t.Errorf("the filter form's region: %v", v)
	}
	regionPNG := shot()
	// paging by cursor: 60 more hosts make two pages
	var bulk []catalog.Host
	for i := 0; i < 60; i++ {
		bulk = append(bulk, catalog.Host{Name: fmt.Sprintf("bulk-%02d", i), Platform: catalog.PlatformOnprem, Image: "web", Version: "1.2.0", LastReport: clk.Now(), DriftSummary: []byte(`{"source":"agent"}`)})
	}
	must(t, f.cat.ReportHosts(ctx, bulk))
	rowsNow := func() []string {
		return list(`Array.from(document.querySelectorAll('#fleet tbody tr')).map(tr => tr.querySelector('.badge').textContent + ':' + tr.dataset.host)`)
	}
	do("fleet page", chromedp.Navigate(f.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#fleet tbody tr`)))
	page1 := rowsNow()
	if len(page1) != PageSize {
		t.Fatalf("first page has %d rows", len(page1))
	}
	follow(`#paging a[rel="next"]`, "/?"+url.Values{"after": {page1[len(page1)-1]}}.Encode())
	page2 := rowsNow()
	if len(page2) != 66-PageSize || slices.Contains(page1, page2[0]) {
		t.Errorf("second page: %d rows from %s", len(page2), page2[0])
	}
	pagingPNG := shot()
	follow(`#paging a[rel="prev"]`, "/?"+url.Values{"before": {page2[0]}}.Encode())
	if back := rowsNow(); strings.Join(back, ",") != strings.Join(page1, ",") {
		t.Errorf("previous page differs from the first:\n%v\n%v", back, page1)
	}

	// signing out ends the session: the next page load asks to sign in again
	follow(`#who button`, "/auth/logout")
	if m := text(`#message`); !strings.Contains(m, "session has ended") {
		t.Errorf("sign-out page: %q", m)
	}
	signedOutPNG := shot()
	idp.QueueUser(&mockoidc.MockUser{Subject: "x", Groups: []string{"visitors"}})
	do("load after sign-out", chromedp.Navigate(f.ts.URL+"/images"), chromedp.WaitVisible(chromedp.CSS(`#message`)))
	if m := text(`#message`); !strings.Contains(m, "none of the allowed groups") {
		t.Errorf("a person outside the allowed groups: %q", m)
	}

	out := os.Getenv("IMGPIPE_SCREENSHOTS")
	if out == "" {
		out = filepath.Join("testdata", "out")
	}
	must(t, os.MkdirAll(out, 0o755))
	for name, png := range map[string][]byte{"dashboard.png": fleetPNG, "drifted.png": driftedPNG, "host.png": hostPNG, "images.png": imagesPNG,
		"triage-drifted-web.png": triagePNG, "triage-host.png": triageHostPNG, "triage-version.png": versionPNG, "triage-image.png": imagePNG, "signed-out.png": signedOutPNG,
		"region.png": regionPNG, "paging.png": pagingPNG} {
		if len(png) < 1000 {
			t.Errorf("%s: screenshot of %d bytes", name, len(png))
		}
		must(t, os.WriteFile(filepath.Join(out, name), png, 0o644))
	}
	t.Logf("screenshots in %s", out)
}
