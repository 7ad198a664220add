package server

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
	"imgpipe/internal/drift"
	"imgpipe/internal/testenv"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

const testToken = "s3cret-agent-token-0123456789"

type backend struct {
	name        string
	newLocation func(t *testing.T) string
}

func TestServerSQLite(t *testing.T) {
	runServerSuite(t, backend{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }})
}

func TestServerPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	runServerSuite(t, backend{"postgres", func(t *testing.T) string { return pg.NewDatabase(t) }})
}

// runServerSuite is the one body run on every catalog backend.
func runServerSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"ConcurrentAgentsOverTLS", testConcurrentAgents},
		{"RejectedReportsStoreNothing", testRejections},
		{"APIAndStaleness", testAPI},
		{"MetricsReflectState", testMetrics},
		{"DashboardEscapes", testDashboardEscapes},
		{"EnrolmentBindsHosts", testEnrolment},
		{"SlowBodiesTakeNoSlot", testSlowBody},
		{"PagingAndRegion", testPagingAndRegion},
		{"ReadSlotsLeaveIntakeFree", testReadSlotsLeaveIntakeFree},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

type fixture struct {
	cat *catalog.Catalog
	srv *Server
	ts  *httptest.Server

	credMu sync.Mutex
	creds  map[string]string // host -> credential issued by enrolling
}

func newFixture(t *testing.T, b backend, cfg Config) *fixture {
	t.Helper()
	ctx := context.Background()
	cat, err := catalog.Open(ctx, b.newLocation(t))
	if err != nil {
		t.Fatalf("open catalog: %v", err)
	}
	t.Cleanup(func() { cat.Close() })
	cfg.Catalog = cat
	if cfg.AgentToken == "" {
		cfg.AgentToken = testToken
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return &fixture{cat: cat, srv: srv, ts: newTLS(t, srv), creds: map[string]string{}}
}

// enrol trades the fleet token for a credential of host through the API.
func enrol(t testing.TB, client *http.Client, base, fleetToken, host string) (int, agent.EnrollResponse) {
	t.Helper()
	body, _ := json.Marshal(agent.EnrollRequest{Host: host})
	req, err := http.NewRequest(http.MethodPost, base+agent.EnrollPath, bytes.NewReader(body))
	must(t, err)
	req.Header.Set("Authorization", "Bearer "+fleetToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	must(t, err)
	defer resp.Body.Close()
	var er agent.EnrollResponse
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusCreated {
		must(t, json.Unmarshal(b, &er))
	}
	return resp.StatusCode, er
}

// credFor returns host's credential, enrolling it on first use.
func (f *fixture) credFor(t testing.TB, host string) string {
	t.Helper()
	f.credMu.Lock()
	defer f.credMu.Unlock()
	if c, ok := f.creds[host]; ok {
		return c
	}
	status, er := enrol(t, f.ts.Client(), f.ts.URL, testToken, host)
	if status != http.StatusCreated {
		t.Fatalf("enrol %s: %d", host, status)
	}
	f.creds[host] = er.Credential
	return er.Credential
}

func newTLS(t *testing.T, srv *Server) *httptest.Server {
	ts := httptest.NewTLSServer(srv.Handler())
	t.Cleanup(ts.Close)
	return ts
}

// seedCatalog records image web 1.0.0 (revoked), 1.1.0, 1.2.0 (prod,
// replicated to two regions) and image db 2.0.0 (prod).
func seedCatalog(t *testing.T, c *catalog.Catalog) {
	t.Helper()
	ctx := context.Background()
	gal := "/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/images/providers/Microsoft.Compute/galleries/gal/images/web/versions/"
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		if _, err := c.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v, Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat("a", 63) + v[2:3]}}); err != nil {
			t.Fatal(err)
		}
	}
	ref := catalog.Ref{Image: "web", Version: "1.2.0"}
	gv, err := c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindGalleryVersion, ResourceID: gal + "1.2.0", Location: "westeurope", State: catalog.StateSucceeded})
	if err != nil {
		t.Fatal(err)
	}
	for _, region := range []string{"westeurope", "northeurope"} {
		if _, err := c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindRegion, ResourceID: gal + "1.2.0#" + region, Location: region, ParentID: gv.ID, State: catalog.StateSucceeded}); err != nil {
			t.Fatal(err)
		}
	}
	catalogtest.Tested(t, c, ref)
	if _, err := c.Promote(ctx, catalog.PromoteRequest{Ref: ref, Channel: "prod", By: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "CVE-2026-0001", By: "test"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddVersion(ctx, catalog.NewVersion{Image: "db", Version: "2.0.0", Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat("b", 64)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutCopy(ctx, catalog.Ref{Image: "db", Version: "2.0.0"}, catalog.Copy{Kind: catalog.KindGalleryVersion, ResourceID: strings.ReplaceAll(gal, "/web/", "/db/") + "2.0.0", Location: "westeurope", State: catalog.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	catalogtest.Tested(t, c, catalog.Ref{Image: "db", Version: "2.0.0"})
	if _, err := c.Promote(ctx, catalog.PromoteRequest{Ref: catalog.Ref{Image: "db", Version: "2.0.0"}, Channel: "prod", By: "test"}); err != nil {
		t.Fatal(err)
	}
}

// agentTree builds a small system tree with an identity and a baseline.
// When drifted, one file is changed, one added and one removed after the
// capture.
func agentTree(t testing.TB, image, version string, drifted bool) string {
	t.Helper()
	root := t.TempDir()
	for i := 0; i < 5; i++ {
		p := filepath.Join(root, "srv", "app", fmt.Sprintf("conf-%d.ini", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(fmt.Sprintf("setting=%d\n", i)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	id := drift.Identity{Image: image, Version: version, BuildID: "b-" + version}
	if _, err := drift.WriteIdentity(root, id); err != nil {
		t.Fatal(err)
	}
	base, err := drift.Capture(context.Background(), root, drift.CaptureOptions{Rules: drift.Rules{Paths: []string{"srv"}}, Identity: &id, Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	bp, err := drift.BaselinePath(root)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := drift.WriteBaselineFile(bp, base); err != nil {
		t.Fatal(err)
	}
	if drifted {
		must(t, os.WriteFile(filepath.Join(root, "srv", "app", "conf-0.ini"), []byte("setting=evil\n"), 0o644))
		must(t, os.WriteFile(filepath.Join(root, "srv", "app", "backdoor.sh"), []byte("#!/bin/sh\n"), 0o755))
		must(t, os.Remove(filepath.Join(root, "srv", "app", "conf-1.ini")))
	}
	return root
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func newAgent(t testing.TB, f *fixture, root, host, token string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Options{Server: f.ts.URL, Token: token, HTTPClient: f.ts.Client(), Root: root, Host: host,
		Platform: catalog.PlatformOnprem, Workers: 2, RetryBase: 50 * time.Millisecond, RetryMax: 500 * time.Millisecond, Attempts: 8, Version: "test"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func testConcurrentAgents(t *testing.T, b backend) {
	f := newFixture(t, b, Config{})
	seedCatalog(t, f.cat)
	const n = 20
	type agentCase struct {
		host    string
		version string
		drifted bool
		a       *agent.Agent
	}
	cases := make([]agentCase, n)
	for i := range cases {
		c := agentCase{host: fmt.Sprintf("web-%02d", i), version: []string{"1.0.0", "1.1.0", "1.2.0"}[i%3], drifted: i%4 == 0}
		c.a = newAgent(t, f, agentTree(t, "web", c.version, c.drifted), c.host, testToken)
		cases[i] = c
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	reports := make([]agent.Report, n)
	for i := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			reports[i], errs[i] = cases[i].a.RunOnce(context.Background(), drift.Full)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("agent %s: %v", cases[i].host, err)
		}
	}
	hosts, err := f.cat.Hosts(context.Background(), catalog.HostFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hosts) != n {
		t.Fatalf("catalog has %d hosts, want %d", len(hosts), n)
	}
	rows := getJSON[[]HostRow](t, f, "/api/hosts", http.StatusOK)
	byName := map[string]HostRow{}
	for _, r := range rows {
		byName[r.Name] = r
	}
	for i, c := range cases {
		r, ok := byName[c.host]
		if !ok {
			t.Fatalf("host %s missing from /api/hosts", c.host)
		}
		if r.Version != c.version || r.Image != "web" || r.State.Source != SourceAgent || r.State.BuildID != "b-"+c.version {
			t.Errorf("%s: got %+v", c.host, r)
		}
		if r.State.Drifted != c.drifted || reports[i].Drifted != c.drifted {
			t.Errorf("%s: drifted %v (report %v), want %v", c.host, r.State.Drifted, reports[i].Drifted, c.drifted)
		}
		if c.drifted {
			s := r.State.Summary
			if s == nil || s.FilesAdded != 1 || s.FilesRemoved != 1 || s.FilesChanged != 1 || len(r.State.Changes) != 3 {
				t.Errorf("%s: summary %+v changes %+v, want 1 added, 1 removed, 1 changed", c.host, s, r.State.Changes)
			}
		}
		wantBehind := map[string]int{"1.0.0": 2, "1.1.0": 1, "1.2.0": 0}[c.version]
		if r.VersionsBehind != wantBehind || r.Revoked != (c.version == "1.0.0") {
			t.Errorf("%s (%s): behind %d revoked %v", c.host, c.version, r.VersionsBehind, r.Revoked)
		}
	}
	if got := f.srv.acceptedCount(); got != n {
		t.Errorf("accepted counter %d, want %d", got, n)
	}
	// a busy database answers 503 and the agents retry; say how often
	t.Logf("%d agents over TLS: %d reports stored, %d store retries", n, f.srv.acceptedCount(), f.srv.rejectedCount(RejectStore))
}

func getJSON[T any](t *testing.T, f *fixture, path string, want int) T {
	t.Helper()
	resp, err := f.ts.Client().Get(f.ts.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("GET %s: %d %s, want %d", path, resp.StatusCode, body, want)
	}
	var v T
	if want < 300 {
		if err := json.Unmarshal(body, &v); err != nil {
			t.Fatalf("GET %s: %v in %s", path, err, body)
		}
	}
	return v
}

func validReport(host string) agent.Report {
	return agent.Report{Schema: agent.Schema, Host: host, Platform: "onprem", OS: "linux", Image: "web", Version: "1.2.0",
		Depth: "quick", CheckedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), DurationMS: 12}
}

// post sends a report. The fleet token (testToken) stands for "the right
// credential": the credential of the host the body names (or of a probe
// host when it names none that could enrol).
func post(t *testing.T, f *fixture, token, contentType string, body []byte) (int, string) {
	t.Helper()
	if token == testToken {
		var m struct {
			Host string `json:"host"`
		}
		host := "probe-host"
		if json.Unmarshal(body, &m) == nil && agent.ValidHostName(m.Host) {
			host = m.Host
		}
		token = f.credFor(t, host)
	}
	req, err := http.NewRequest(http.MethodPost, f.ts.URL+agent.ReportsPath, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

func testRejections(t *testing.T, b backend) {
	f := newFixture(t, b, Config{})
	seedCatalog(t, f.cat)
	enc := func(mut func(m map[string]any)) []byte {
		raw, _ := json.Marshal(validReport("evil"))
		var m map[string]any
		must(t, json.Unmarshal(raw, &m))
		mut(m)
		out, _ := json.Marshal(m)
		return out
	}
	big := validReport("evil")
	for i := 0; i < agent.MaxChanges; i++ {
		big.Changes = append(big.Changes, agent.Change{Area: "file", Kind: "added", Name: strings.Repeat("x", 1024), Detail: strings.Repeat("y", 512)})
	}
	big.Drifted, big.Summary.FilesAdded = true, agent.MaxChanges
	bigBody, _ := json.Marshal(big)
	if len(bigBody) <= agent.MaxReportBytes {
		t.Fatalf("oversized fixture is only %d bytes", len(bigBody))
	}
	tests := []struct {
		name, token, ctype string
		body               []byte
		status             int
		reason             string
	}{
		{"no token", "", "application/json", enc(func(map[string]any) {}), 401, RejectUnauthorized},
		{"bad token", "wrong", "application/json", enc(func(map[string]any) {}), 401, RejectUnauthorized},
		{"token prefix", testToken[:10], "application/json", enc(func(map[string]any) {}), 401, RejectUnauthorized},
		{"form content type", testToken, "application/x-www-form-urlencoded", enc(func(map[string]any) {}), 415, RejectMediaType},
		{"malformed json", testToken, "application/json", []byte(`{"schema": "imgpipe-agent-report/v1", "host": `), 400, RejectBadJSON},
		{"not an object", testToken, "application/json", []byte(`[1,2,3]`), 400, RejectBadJSON},
		{"wrong type", testToken, "application/json", enc(func(m map[string]any) { m["summary"] = map[string]any{"files_added": "many"} }), 400, RejectBadJSON},
		{"unknown field", testToken, "application/json", enc(func(m map[string]any) { m["password"] = "hunter2" }), 400, RejectBadJSON},
		{"trailing data", testToken, "application/json", append(enc(func(map[string]any) {}), []byte(`{"x":1}`)...), 400, RejectBadJSON},
		{"oversized", testToken, "application/json", bigBody, 413, RejectTooLarge},
		{"oversized garbage", testToken, "application/json", bytes.Repeat([]byte("{"), agent.MaxReportBytes+1), 413, RejectTooLarge},
		{"wrong schema", testToken, "application/json", enc(func(m map[string]any) { m["schema"] = "v0" }), 400, RejectInvalid},
		{"host with markup", testToken, "application/json", enc(func(m map[string]any) { m["host"] = "<script>" }), 400, RejectInvalid},
		{"empty host", testToken, "application/json", enc(func(m map[string]any) { m["host"] = "" }), 400, RejectInvalid},
		{"platform", testToken, "application/json", enc(func(m map[string]any) { m["platform"] = "mars" }), 400, RejectInvalid},
		{"image name", testToken, "application/json", enc(func(m map[string]any) { m["image"] = "../etc" }), 400, RejectInvalid},
		{"version", testToken, "application/json", enc(func(m map[string]any) { m["version"] = strings.Repeat("1", 65) }), 400, RejectInvalid},
		{"negative count", testToken, "application/json", enc(func(m map[string]any) { m["summary"] = map[string]any{"files_added": -1} }), 400, RejectInvalid},
		{"drifted disagrees", testToken, "application/json", enc(func(m map[string]any) { m["drifted"] = true }), 400, RejectInvalid},
		{"too many changes", testToken, "application/json", enc(func(m map[string]any) {
			var cs []map[string]any
			for i := 0; i <= agent.MaxChanges; i++ {
				cs = append(cs, map[string]any{"area": "file", "kind": "added", "name": fmt.Sprint(i)})
			}
			m["changes"], m["drifted"], m["summary"] = cs, true, map[string]any{"files_added": len(cs)}
		}), 400, RejectInvalid},
		{"bad change kind", testToken, "application/json", enc(func(m map[string]any) {
			m["changes"] = []map[string]any{{"area": "file", "kind": "exploded", "name": "x"}}
		}), 400, RejectInvalid},
		{"no checked_at", testToken, "application/json", enc(func(m map[string]any) { delete(m, "checked_at") }), 400, RejectInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := f.srv.rejectedCount(tc.reason)
			status, msg := post(t, f, tc.token, tc.ctype, tc.body)
			if status != tc.status {
				t.Fatalf("status %d (%s), want %d", status, msg, tc.status)
			}
			if got := f.srv.rejectedCount(tc.reason); got != before+1 {
				t.Errorf("rejected{%s} went %d -> %d", tc.reason, before, got)
			}
			if strings.Contains(msg, "hunter2") || strings.Contains(msg, testToken) {
				t.Errorf("answer echoes a secret: %s", msg)
			}
			hosts, err := f.cat.Hosts(context.Background(), catalog.HostFilter{})
			if err != nil {
				t.Fatal(err)
			}
			if len(hosts) != 0 {
				t.Fatalf("a rejected report was stored: %+v", hosts)
			}
		})
	}
	// the same report, well-formed and with the right token, is stored
	status, msg := post(t, f, testToken, "application/json; charset=utf-8", enc(func(map[string]any) {}))
	if status != http.StatusAccepted {
		t.Fatalf("valid report: %d %s", status, msg)
	}
	if hosts, _ := f.cat.Hosts(context.Background(), catalog.HostFilter{}); len(hosts) != 1 || hosts[0].Name != "evil" {
		t.Fatalf("valid report not stored: %+v", hosts)
	}
	must(t, f.cat.RemoveHost(context.Background(), "evil"))
	// an agent with the wrong fleet token fails at once, without retrying
	a := newAgent(t, f, agentTree(t, "web", "1.2.0", false), "wrong-token-host", "not-the-token")
	before := f.srv.rejectedCount(RejectUnauthorized)
	_, err := a.RunOnce(context.Background(), drift.Quick)
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("agent with a bad token: %v", err)
	}
	if got := f.srv.rejectedCount(RejectUnauthorized); got != before+1 {
		t.Errorf("bad token retried: %d rejections", got-before)
	}
	// a saturated intake answers 503 with Retry-After and stores nothing
	for i := 0; i < MaxConcurrentReports; i++ {
		f.srv.intake <- struct{}{}
	}
	busy := validReport("busy-host")
	body, _ := json.Marshal(busy)
	if status, msg := post(t, f, testToken, "application/json", body); status != http.StatusServiceUnavailable || f.srv.rejectedCount(RejectBusy) != 1 {
		t.Fatalf("saturated intake: %d %s", status, msg)
	}
	for i := 0; i < MaxConcurrentReports; i++ {
		<-f.srv.intake
	}
	if status, msg := post(t, f, testToken, "application/json", body); status != http.StatusAccepted {
		t.Fatalf("after the load: %d %s", status, msg)
	}
	// intake disabled without a token
	srv, err := New(Config{Catalog: f.cat})
	must(t, err)
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodPost, agent.ReportsPath, bytes.NewReader(enc(func(map[string]any) {})))
	req.Header.Set("Authorization", "Bearer ")
	req.Header.Set("Content-Type", "application/json")
	srv.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("intake without a configured token: %d", rec.Code)
	}
}

func (s *Server) rejectedCount(reason string) int64 {
	return int64(testutil.ToFloat64(s.metrics.rejected.WithLabelValues(reason)))
}

func (s *Server) acceptedCount() int64 { return int64(testutil.ToFloat64(s.metrics.accepted)) }

func report(t *testing.T, f *fixture, r agent.Report) {
	t.Helper()
	body, err := agent.Encode(r)
	must(t, err)
	if status, msg := post(t, f, testToken, "application/json", body); status != http.StatusAccepted {
		t.Fatalf("report %s: %d %s", r.Host, status, msg)
	}
}

func testAPI(t *testing.T, b backend) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	f := newFixture(t, b, Config{Now: func() time.Time { return now }})
	seedCatalog(t, f.cat)
	r := validReport("web-old")
	r.Version = "1.0.0"
	r.Drifted, r.Summary = true, drift.Summary{FilesChanged: 2, Packages: 1}
	r.Changes = []agent.Change{{Area: "file", Kind: "changed", Name: "etc/ssh/sshd_config", Detail: "content, mode (0644 -> 0666)"}, {Area: "package", Kind: "changed", Name: "dpkg:openssl:amd64", Detail: "3.0.1 -> 3.0.2"}}
	report(t, f, r)
	r2 := validReport("db-1")
	r2.Image, r2.Version = "db", "2.0.0"
	report(t, f, r2)
	r3 := validReport("mystery")
	r3.Image, r3.Version = "web", "9.9.9"
	report(t, f, r3)
	r4 := validReport("no-baseline")
	r4.Image, r4.Version, r4.Depth, r4.Error = "", "", "", "read the image identity: no such file"
	report(t, f, r4)

	imgs := getJSON[[]catalog.Image](t, f, "/api/images", 200)
	if len(imgs) != 2 {
		t.Fatalf("images: %+v", imgs)
	}
	iv := getJSON[ImageVersions](t, f, "/api/images/web/versions", 200)
	if len(iv.Versions) != 3 || iv.Versions[0].Version != "1.2.0" || strings.Join(iv.Versions[0].Regions, ",") != "northeurope,westeurope" ||
		strings.Join(iv.Versions[0].Channels, ",") != "prod" || iv.Versions[2].Status != catalog.StatusRevoked || iv.Versions[2].Revoked != "CVE-2026-0001" || iv.Versions[2].Hosts != 1 {
		t.Fatalf("versions: %+v", iv)
	}
	if iv.Versions[0].Tested != "passed" || iv.Versions[1].Tested != "" { // the TESTED column: 1.2.0 passed, 1.1.0 never ran
		t.Errorf("tested: %q %q", iv.Versions[0].Tested, iv.Versions[1].Tested)
	}
	getJSON[apiError](t, f, "/api/images/nope/versions", 404)
	getJSON[apiError](t, f, "/api/images/bad%20name/versions", 400)

	h := getJSON[HostRow](t, f, "/api/hosts/web-old", 200)
	if !h.Revoked || h.VersionsBehind != 2 || h.ChannelVersion != "1.2.0" || h.Status != "revoked" || h.Changed() != 2 || len(h.State.Changes) != 2 || !h.LastSeen.Equal(now) {
		t.Fatalf("web-old: %+v", h)
	}
	if h := getJSON[HostRow](t, f, "/api/hosts/db-1", 200); h.Status != "ok" || h.VersionsBehind != 0 {
		t.Fatalf("db-1: %+v", h)
	}
	if h := getJSON[HostRow](t, f, "/api/hosts/mystery", 200); h.Status != "unknown" || !h.Unknown {
		t.Fatalf("mystery: %+v", h)
	}
	if h := getJSON[HostRow](t, f, "/api/hosts/no-baseline", 200); h.Status != "error" || h.State.Error == "" {
		t.Fatalf("no-baseline: %+v", h)
	}
	getJSON[apiError](t, f, "/api/hosts/ghost", 404)
	// a day and more later every host is stale
	now = now.Add(25 * time.Hour)
	if h := getJSON[HostRow](t, f, "/api/hosts/db-1", 200); h.Status != "stale" || !h.Stale {
		t.Fatalf("db-1 a day later: %+v", h)
	}
}

// metricValue sums the samples of a family whose labels include the given
// ones: `imgpipe_hosts{platform="azure"}` adds up every azure series.
func metricValue(t *testing.T, text, series string) string {
	t.Helper()
	name, sel, _ := strings.Cut(strings.TrimSuffix(series, "}"), "{")
	want := map[string]string{}
	for _, kv := range strings.Split(sel, ",") {
		if k, v, ok := strings.Cut(kv, "="); ok {
			want[k] = strings.Trim(v, `"`)
		}
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, text)
	}
	fam, ok := fams[name]
	if !ok {
		t.Fatalf("metric %s not found in:\n%s", series, text)
	}
	var sum float64
	found := false
samples:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue samples
			}
		}
		found = true
		switch {
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Untyped != nil:
			sum += m.GetUntyped().GetValue()
		case m.Histogram != nil: // its count of observations
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	if !found {
		return "0"
	}
	return strconv.FormatFloat(sum, 'f', -1, 64)
}

func scrape(t *testing.T, f *fixture) string {
	t.Helper()
	resp, err := f.ts.Client().Get(f.ts.URL + "/metrics")
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain; version=0.0.4") {
		t.Fatalf("metrics: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return string(b)
}

// testMetrics: the exposition (client_golang) parses, carries build_info
// and the Go and process collectors, counts hosts by image, version,
// platform and state from the catalog, counts intake outcomes, and has no
// series per host.
func testMetrics(t *testing.T, b backend) {
	var mu sync.Mutex
	now := time.Now()
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	f := newFixture(t, b, Config{Now: clock})
	seedCatalog(t, f.cat)
	m := scrape(t, f)
	if strings.Contains(m, "\nimgpipe_hosts{") || metricValue(t, m, `imgpipe_reports_rejected_total{reason="unauthorized"}`) != "0" {
		t.Fatalf("fresh metrics:\n%s", m)
	}
	r := validReport("a")
	r.Version = "1.1.0"
	report(t, f, r)
	r = validReport("b")
	r.Version = "1.0.0"
	r.Drifted, r.Summary.FilesAdded = true, 3
	report(t, f, r)
	r = validReport("c")
	r.Platform = "azure"
	report(t, f, r)
	post(t, f, "bad", "application/json", []byte("{}"))
	post(t, f, testToken, "application/json", []byte("{"))
	m = scrape(t, f)
	// hosts by report age are as of the first scrape (none then) until
	// AgesEvery has passed
	if got := metricValue(t, m, `imgpipe_hosts_by_report_age{age="5m"}`); got != "0" {
		t.Errorf("report ages recomputed before AgesEvery: %s hosts within 5m", got)
	}
	mu.Lock()
	now = now.Add(AgesEvery)
	mu.Unlock()
	m = scrape(t, f)
	for series, want := range map[string]string{
		`imgpipe_hosts{platform="onprem"}`: "2",
		`imgpipe_hosts{platform="azure"}`:  "1",
		`imgpipe_hosts{channel="prod"}`:    "3",
		`imgpipe_hosts{state="ok"}`:        "1",
		`imgpipe_hosts{state="revoked"}`:   "1",
		`imgpipe_hosts{state="behind"}`:    "1",
		`imgpipe_hosts{state="drifted"}`:   "0", // b drifted, but revoked is worse
		`imgpipe_hosts{channel="prod",image="web",version="1.0.0",platform="onprem",state="revoked"}`: "1",
		`imgpipe_hosts{image="web",version="1.1.0",state="behind"}`:                                   "1",
		`imgpipe_hosts_by_report_age{age="5m"}`:                                                       "3",
		`imgpipe_hosts_by_report_age{age="older"}`:                                                    "0",
		`imgpipe_reports_accepted_total`:                                                              "3",
		`imgpipe_reports_rejected_total{reason="unauthorized"}`:                                       "1",
		`imgpipe_reports_rejected_total{reason="bad_json"}`:                                           "1",
		`imgpipe_reports_rejected_total{reason="too_large"}`:                                          "0",
		`imgpipe_enrolments_total{outcome="enrolled"}`:                                                "4", // and probe-host
		`imgpipe_build_info`:                                                                          "1",
		`go_goroutines{}`:                                                                             metricValue(t, m, "go_goroutines"),
	} {
		if got := metricValue(t, m, series); got != want {
			t.Errorf("%s = %s, want %s", series, got, want)
		}
	}
	if n, _ := strconv.Atoi(metricValue(t, m, "imgpipe_intake_batch_reports")); n < 1 || n > 3 {
		t.Errorf("%d intake batches for 3 reports", n)
	}
	for _, fam := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "imgpipe_intake_commit_seconds_bucket"} {
		if !strings.Contains(m, "\n"+fam) {
			t.Errorf("no %s in the exposition", fam)
		}
	}
	// bounded cardinality: versions and images agents make up are one
	// series, not one each
	for i := range 20 {
		r = validReport(fmt.Sprintf("odd-%d", i))
		r.Version = fmt.Sprintf("9.9.%d", i)
		if i%2 == 1 {
			r.Image = fmt.Sprintf("made-up-%d", i)
		}
		report(t, f, r)
	}
	m = scrape(t, f)
	for series, want := range map[string]string{
		`imgpipe_hosts{image="web",version="unknown",state="unknown"}`:     "10",
		`imgpipe_hosts{image="unknown",version="unknown",state="unknown"}`: "10",
		`imgpipe_hosts{image="web",version="1.1.0",state="behind"}`:        "1",
	} {
		if got := metricValue(t, m, series); got != want {
			t.Errorf("with made-up versions: %s = %s, want %s", series, got, want)
		}
	}
	if n := strings.Count(m, "\nimgpipe_hosts{"); n != 5 {
		t.Errorf("%d imgpipe_hosts series for 3 known groups and 2 made-up ones:\n%s", n, m)
	}
	// bounded cardinality: no label names a host
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, host := range []string{`"a"`, `"b"`, `"c"`} {
			if strings.Contains(line, host) {
				t.Errorf("a series per host: %s", line)
			}
		}
	}
}

func testDashboardEscapes(t *testing.T, b backend) {
	f := newFixture(t, b, Config{})
	seedCatalog(t, f.cat)
	// names from Azure are not validated by the intake; the catalog takes them
	evil := `<img src=x onerror=alert(1)>`
	raw, _ := json.Marshal(HostState{Source: SourceAgent, Drifted: true, Summary: &drift.Summary{FilesAdded: 1},
		Changes: []agent.Change{{Area: "file", Kind: "added", Name: "etc/<script>alert(2)</script>", Detail: `"><b>x</b>`}}})
	must(t, f.cat.ReportHost(context.Background(), catalog.Host{Name: evil, Platform: "onprem", Image: "web", Version: "1.2.0", DriftSummary: raw}))
	for _, path := range []string{"/", "/hosts/" + strings.ReplaceAll(evil, " ", "%20")} {
		resp, err := f.ts.Client().Get(f.ts.URL + path)
		must(t, err)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		s := string(body)
		for _, bad := range []string{"<img src=x", "<script>alert", "<b>x</b>"} {
			if strings.Contains(s, bad) {
				t.Errorf("GET %s: unescaped %q in the page", path, bad)
			}
		}
		if !strings.Contains(s, "&lt;img src=x onerror=alert(1)&gt;") {
			t.Errorf("GET %s: the host name is not shown escaped", path)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("GET %s: no CSP", path)
		}
	}
	resp, err := f.ts.Client().Get(f.ts.URL + "/images")
	must(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "northeurope") || !strings.Contains(string(body), "CVE-2026-0001") {
		t.Errorf("images page lacks regions or revocation:\n%s", body)
	}
	resp, err = f.ts.Client().Get(f.ts.URL + "/static/style.css")
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("style.css: %d", resp.StatusCode)
	}
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }

// FuzzIntake posts arbitrary bodies to the intake: never a 5xx or a panic,
// and a host is stored only when the answer is 202.
func FuzzIntake(f *testing.F) {
	good, _ := json.Marshal(validReport("fuzz-host"))
	f.Add(good)
	f.Add([]byte(`{"schema":"imgpipe-agent-report/v1"}`))
	f.Add([]byte(`{"summary":{"files_added":1e99}}`))
	f.Add([]byte("\x00\xff{"))
	cat, err := catalog.Open(context.Background(), filepath.Join(f.TempDir(), "catalog.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer cat.Close()
	srv, err := New(Config{Catalog: cat, AgentToken: testToken})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	ereq := httptest.NewRequest(http.MethodPost, agent.EnrollPath, strings.NewReader(`{"host":"fuzz-host"}`))
	ereq.Header.Set("Authorization", "Bearer "+testToken)
	ereq.Header.Set("Content-Type", "application/json")
	erec := httptest.NewRecorder()
	h.ServeHTTP(erec, ereq)
	var er agent.EnrollResponse
	if erec.Code != http.StatusCreated || json.Unmarshal(erec.Body.Bytes(), &er) != nil {
		f.Fatalf("enrol: %d %s", erec.Code, erec.Body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ctx := context.Background()
		before, err := cat.Hosts(ctx, catalog.HostFilter{})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodPost, agent.ReportsPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+er.Credential)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		after, err := cat.Hosts(ctx, catalog.HostFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusAccepted && len(after) != len(before) {
			t.Fatalf("status %d but a host was stored", rec.Code)
		}
		if rec.Code == http.StatusAccepted {
			if len(after) == 0 {
				t.Fatal("202 but nothing stored")
			}
			for _, h := range after {
				_ = cat.RemoveHost(ctx, h.Name)
			}
		}
	})
}
