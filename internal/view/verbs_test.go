package view

import (
	"errors"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/buildinfo"
	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
	"imgpipe/internal/onprem"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/sbom"
)

func draws(t *testing.T, f func(w *strings.Builder) error) string {
	t.Helper()
	var b strings.Builder
	if err := f(&b); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestAgentRun(t *testing.T) {
	r := &agent.Report{Host: "web-07", Image: "web", Version: "1.4.0", Platform: "onprem", Depth: "quick", Drifted: true}
	for _, c := range []struct {
		name   string
		o      *agent.Outcome
		asJSON bool
		sent   bool
		want   string
	}{
		{"periodic", nil, false, true, ""},
		{"sent", &agent.Outcome{Report: r}, false, true, "web 1.4.0 on web-07 (onprem): DRIFTED: 0 added, 0 removed, 0 changed files, 0 package and 0 service changes, 0 problems (quick check); report sent\n"},
		{"not sent", &agent.Outcome{Report: r}, false, false, "report NOT sent\n"},
		{"no check", &agent.Outcome{Report: &agent.Report{Error: "no baseline"}}, false, false, ""},
		{"json even unsent", &agent.Outcome{Report: r}, true, false, `"host": "web-07"`},
		{"test written", &agent.Outcome{Test: &agent.TestReport{Test: "t1", Commands: make([]agent.CommandResult, 2)}, Port: "/dev/ttyS1"}, false, true,
			"test t1: report written to /dev/ttyS1 (2 commands, drift false)\n"},
		{"test not written", &agent.Outcome{Test: &agent.TestReport{Test: "t1"}}, false, false, ""},
		{"test json", &agent.Outcome{Test: &agent.TestReport{Test: "t1"}}, true, false, `"test": "t1"`},
	} {
		got := draws(t, func(w *strings.Builder) error { return AgentRun(w, c.asJSON, c.o, c.sent) })
		if (c.want == "" && got != "") || !strings.Contains(got, c.want) || (c.want != "" && !c.asJSON && !strings.HasSuffix(got, c.want)) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestLibraryViews(t *testing.T) {
	if got := draws(t, func(w *strings.Builder) error { return LibraryImages(w, true, nil) }); got != "[]\n" {
		t.Errorf("an empty library as JSON: %q", got)
	}
	if got := draws(t, func(w *strings.Builder) error { return LibraryImages(w, false, nil) }); !strings.HasPrefix(got, "IMAGE  VERSION") {
		t.Errorf("an empty library: %q", got)
	}
	res := &onprem.AddResult{Path: "/lib/web/1.0/web-1.0.vhdx", Metadata: onprem.Metadata{Image: "web", Version: "1.0", Format: "vhdx", Generation: "V1", OS: "linux"}}
	for _, c := range []struct {
		a    *pipeline.LibraryAdd
		want string
	}{
		{&pipeline.LibraryAdd{Result: res}, "channels: test\n"},
		{&pipeline.LibraryAdd{Result: res, Catalog: "c.db"}, "channels: test\n  recorded in catalog c.db\n"},
		{&pipeline.LibraryAdd{Result: res, Catalog: "c.db", NotRecorded: errors.New("not MAJOR.MINOR.PATCH")}, "  not recorded in the catalog c.db: not MAJOR.MINOR.PATCH\n"},
	} {
		got := draws(t, func(w *strings.Builder) error { return LibraryAdd(w, false, c.a, []string{"test"}) })
		if !strings.HasPrefix(got, "web 1.0 added: /lib/web/1.0/web-1.0.vhdx\n") || !strings.HasSuffix(got, c.want) {
			t.Errorf("add: %q, want it to end %q", got, c.want)
		}
	}
	if got := draws(t, func(w *strings.Builder) error {
		return LibraryAdd(w, true, &pipeline.LibraryAdd{Result: res, Catalog: "c.db"}, nil)
	}); !strings.Contains(got, `"path": "/lib/web/1.0/web-1.0.vhdx"`) || strings.Contains(got, "c.db") {
		t.Errorf("add as JSON is the library's answer: %s", got)
	}
	if got := LibraryChannels("web", "1.0", []string{"test", "prod"}); got != "web channel test -> 1.0\nweb channel prod -> 1.0\n" {
		t.Errorf("channels: %q", got)
	}
}

func TestSupplyChainViews(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	got := draws(t, func(w *strings.Builder) error {
		return TrustedKeys(w, false, []catalog.TrustedKey{{KeyID: "ed25519:abc", AddedAt: at}})
	})
	if got != "KEY          ADDED BY  ADDED\ned25519:abc  -         2026-03-01 12:00Z\n" {
		t.Errorf("keys: %q", got)
	}
	if got := draws(t, func(w *strings.Builder) error { return SBOMDiff(w, false, sbom.Diff{}, "web", "1.0.0", "1.1.0") }); got != "web 1.0.0 and 1.1.0 have the same packages\n" {
		t.Errorf("no difference: %q", got)
	}
	d := sbom.Diff{Added: []sbom.Package{{Name: "curl", Version: "8.0"}}}
	if got := draws(t, func(w *strings.Builder) error { return SBOMDiff(w, false, d, "web", "1.0.0", "1.1.0") }); !strings.Contains(got, "added") || !strings.Contains(got, "curl") {
		t.Errorf("diff: %q", got)
	}
	if got := draws(t, func(w *strings.Builder) error { return SBOMDiff(w, true, sbom.Diff{}, "web", "a", "b") }); !strings.Contains(got, `"added": null`) {
		t.Errorf("diff as JSON: %q", got)
	}
}

func TestTokenCreated(t *testing.T) {
	tok := catalog.AccessToken{Name: "ci", ExpiresAt: time.Date(2026, 3, 3, 0, 0, 0, 0, time.UTC)}
	var out, notes strings.Builder
	if err := TokenCreated(&out, &notes, false, "imgp_secret", tok); err != nil {
		t.Fatal(err)
	}
	if out.String() != "imgp_secret\n" || notes.String() != "token ci made (expires 2026-03-03T00:00:00Z); the secret above is shown only now\n" {
		t.Errorf("text: %q, notes %q", out.String(), notes.String())
	}
	out.Reset()
	notes.Reset()
	if err := TokenCreated(&out, &notes, true, "imgp_secret", catalog.AccessToken{Name: "ci"}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"secret": "imgp_secret"`) || notes.Len() != 0 {
		t.Errorf("JSON: %q, notes %q", out.String(), notes.String())
	}
	if got := Expiry(catalog.AccessToken{}); got != "never expires" {
		t.Errorf("Expiry of a token without one: %q", got)
	}
}

func TestVersion(t *testing.T) {
	got := draws(t, func(w *strings.Builder) error {
		return Version(w, false, buildinfo.Info{Revision: "abc", Go: "go1.26"})
	})
	if got != "imgpipe dev (revision abc, go1.26)\n" {
		t.Errorf("version: %q", got)
	}
}

// TestVerbTables: the rows of onprem list, webhook list and sbom diff (the
// assertions their packages' tests made when the rows lived there).
func TestVerbTables(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	lib := []onprem.ImageInfo{{Image: "web", Latest: "1.1", Channels: map[string]string{"test": "1.1", "prod": "1.1"}, Versions: []onprem.Metadata{
		{Image: "web", Version: "1.0", Generation: "V1", OS: "linux", Format: "raw", VirtualSize: 4 << 20, Created: at, SHA256: "0123456789abcdef0123"},
		{Image: "web", Version: "1.1", Generation: "V1", OS: "linux", Format: "raw", VirtualSize: 4 << 20, Created: at, SHA256: "abc", Revoked: true, RevokedReason: "CVE"},
	}}}
	lt := libraryTable(lib)
	if rows := lt.Rows; len(rows) != 2 || rows[0][0] != "web" || rows[0][6] != "" || rows[1][6] != "latest,prod,test" || len(rows[1]) != len(lt.Header) ||
		rows[0][5] != "4.0 MiB" || rows[0][8] != "0123456789ab" || rows[1][8] != "abc" || rows[0][9] != "ok" || rows[1][9] != "revoked: CVE" {
		t.Fatalf("library rows = %q", rows)
	}
	ws := []events.WebhookStatus{
		{Webhook: catalog.Webhook{Name: "ops", URL: "https://ops"}, OutboxStatus: catalog.OutboxStatus{Delivered: 1}},
		{Webhook: catalog.Webhook{Name: "chat", URL: "https://chat"}, OutboxStatus: catalog.OutboxStatus{Pending: 1, LastError: "webhook answered 500"}},
	}
	want := "NAME  URL           PENDING  DELIVERED  LAST ERROR\nops   https://ops   0        1          -\nchat  https://chat  1        0          webhook answered 500\n"
	if got := draws(t, func(w *strings.Builder) error { return Webhooks(w, false, ws) }); got != want {
		t.Errorf("webhooks:\n%s\nwant\n%s", got, want)
	}
	d := sbom.Diff{Added: []sbom.Package{{Name: "bash", Version: "5.2"}}, Removed: []sbom.Package{{Name: "jq", Version: "1.6"}},
		Changed: []sbom.Change{{Name: "curl", From: "7.88-1", To: "7.88-2"}}}
	dt := sbomDiffTable(d, "1.4.0", "1.5.0")
	got := strings.Join(dt.Header, " ") + ";"
	for _, r := range dt.Rows {
		got += strings.Join(r, " ") + ";"
	}
	if want := "CHANGE PACKAGE 1.4.0 1.5.0;added bash  5.2;removed jq 1.6 ;upgraded curl 7.88-1 7.88-2;"; got != want {
		t.Errorf("diff rows = %q, want %q", got, want)
	}
	if e := sbomDiffTable(sbom.Diff{}, "a", "b"); len(e.Header) != 4 || e.Rows != nil {
		t.Errorf("empty diff rows: %v %v", e.Header, e.Rows)
	}
}
