package server

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
	"imgpipe/internal/testenv"
)

// TestDashboardInBrowser loads the dashboard with seeded data in headless
// Chromium, checks the fleet table and a host's drift detail, and writes
// screenshots to testdata/out for review.
func TestDashboardInBrowser(t *testing.T) {
	chromium := testenv.RequireTool(t, "chromium")
	f := newFixture(t, backend{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }}, Config{})
	seedCatalog(t, f.cat)
	ctx := context.Background()

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
	r.Version = "1.0.0"
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
	// an Azure VM seen only through the Azure pull
	st, _ := jsonMarshal(HostState{Source: SourceAzure, AzureKind: "vm", Location: "westeurope", ImageResolved: "catalog copy",
		ImageRef: "/subscriptions/1111/resourceGroups/apps/providers/Microsoft.Compute/galleries/gal/images/web/versions/1.1.0"})
	if err := f.cat.ReportHost(ctx, catalog.Host{Name: "vm-azure-7", Platform: catalog.PlatformAzure, Image: "web", Version: "1.1.0",
		ResourceID: "/subscriptions/1111/resourceGroups/apps/providers/Microsoft.Compute/virtualMachines/vm-azure-7", DriftSummary: st}); err != nil {
		t.Fatal(err)
	}

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

	do("load the fleet page", chromedp.Navigate(f.ts.URL+"/"), chromedp.WaitVisible(chromedp.CSS(`#fleet tbody tr`)))
	title, err := chromedp.Run(bctx, chromedp.Title())
	must(t, err)
	hosts := list(`Array.from(document.querySelectorAll('#fleet tbody td.host')).map(td => td.textContent.trim())`)
	// worst first: revoked, drifted, behind, then ok by name
	if want := "web-legacy,web-prod-2,vm-azure-7,db-1,web-prod-1"; strings.Join(hosts, ",") != want {
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
	if want := "web-legacy=revoked/2,web-prod-2=drifted/1,vm-azure-7=behind/1,db-1=ok/0,web-prod-1=ok/0"; strings.Join(rowStates, ",") != want {
		t.Errorf("row states %v, want %s", rowStates, want)
	}
	fleetPNG := shot()

	// triage: the summary's "drifted" count filters the table (in the URL)
	do("filter to drifted", chromedp.Click(chromedp.CSS(`#summary a.st-drifted`)), chromedp.WaitVisible(chromedp.CSS(`#summary a.st-drifted.current`)))
	if got := list(`Array.from(document.querySelectorAll('#fleet tbody td.host')).map(td => td.textContent.trim())`); strings.Join(got, ",") != "web-prod-2" {
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
	do("open images", chromedp.Navigate(f.ts.URL+"/images"), chromedp.WaitVisible(chromedp.CSS(`table.versions`)))
	if row := text(`#image-web table.versions tbody tr`); !strings.Contains(row, "northeurope") || !strings.Contains(row, "prod") {
		t.Errorf("images page first version row: %q", row)
	}
	imagesPNG := shot()
	out := filepath.Join("testdata", "out")
	must(t, os.MkdirAll(out, 0o755))
	for name, png := range map[string][]byte{"dashboard.png": fleetPNG, "drifted.png": driftedPNG, "host.png": hostPNG, "images.png": imagesPNG} {
		if len(png) < 1000 {
			t.Errorf("%s: screenshot of %d bytes", name, len(png))
		}
		must(t, os.WriteFile(filepath.Join(out, name), png, 0o644))
	}
}
