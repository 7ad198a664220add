package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
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
