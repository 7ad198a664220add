package server

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/oauth2-proxy/mockoidc"

	"imgpipe/internal/catalog"
)

// testClock starts at the real time (the OIDC provider signs with it) and
// moves when told.
type testClock struct {
	mu sync.Mutex
	d  time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.d)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.d += d
	c.mu.Unlock()
}

// call sends a request with an optional bearer token and Accept header and
// returns the status and body (redirects are not followed).
func call(t *testing.T, f *fixture, method, path, bearer, accept string) (int, string, http.Header) {
	t.Helper()
	req, err := http.NewRequest(method, f.ts.URL+path, nil)
	must(t, err)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	c := *f.ts.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

const browserAccept = "text/html,application/xhtml+xml,*/*;q=0.8"

func TestAuthRequired(t *testing.T) {
	for _, c := range []struct {
		listen      string
		oidc, force bool
		want        bool
	}{
		{"127.0.0.1:8080", false, false, false},
		{"localhost:8080", false, false, false},
		{"[::1]:8080", false, false, false},
		{"127.0.0.1:8080", true, false, true},
		{"127.0.0.1:8080", false, true, true},
		{"0.0.0.0:8443", false, false, true},
		{"10.1.2.3:8443", false, false, true},
		{":8443", false, false, true},
		{"fleet.example.com:443", false, false, true},
	} {
		if got := AuthRequired(c.listen, c.oidc, c.force); got != c.want {
			t.Errorf("AuthRequired(%q, oidc %v, force %v) = %v, want %v", c.listen, c.oidc, c.force, got, c.want)
		}
	}
}

// TestBearerTokens: with a credential required, unauthenticated reads get
// 401 (the intake and health do not), a token made in the catalog reads, an
// unknown, expired or revoked one is refused.
func TestBearerTokens(t *testing.T) {
	clk := &testClock{}
	f := newFixture(t, sqliteBackend(), Config{Now: clk.Now, Auth: AuthConfig{Required: true}})
	seedCatalog(t, f.cat)
	report(t, f, validReport("web-1")) // the agents' intake keeps its own credentials
	ctx := context.Background()

	for _, p := range []string{"/", "/api/hosts", "/api/hosts/web-1", "/hosts/web-1", "/images", "/images/web", "/images/web/versions/1.2.0", "/api/images", "/metrics"} {
		status, body, h := call(t, f, "GET", p, "", "")
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), "Bearer") || strings.Contains(body, "web-1") {
			t.Errorf("GET %s without a credential: %d %q %s", p, status, h.Get("WWW-Authenticate"), body)
		}
	}
	// a browser without OIDC configured gets a page saying what to do
	if status, body, _ := call(t, f, "GET", "/", "", browserAccept); status != 401 || !strings.Contains(body, "imgpipe serve token create") {
		t.Errorf("browser without a credential: %d %s", status, body)
	}
	for _, p := range []string{"/healthz", "/static/style.css"} {
		if status, _, _ := call(t, f, "GET", p, "", ""); status != 200 {
			t.Errorf("GET %s: %d", p, status)
		}
	}

	secret, tok, err := CreateBearerToken(ctx, f.cat, "ci", "tester", time.Hour, clk.Now())
	must(t, err)
	if !strings.HasPrefix(secret, bearerPrefix) || len(secret) < 40 || tok.ExpiresAt.IsZero() {
		t.Fatalf("token %q %+v", secret, tok)
	}
	list, err := f.cat.AccessTokens(ctx, catalog.TokenBearer, false)
	must(t, err)
	if b, _ := json.Marshal(list); strings.Contains(string(b), secret) || strings.Contains(string(b), secretDigest(secret)) {
		t.Fatalf("the token list carries the secret or its digest: %s", b)
	}
	status, body, _ := call(t, f, "GET", "/api/hosts", secret, "")
	if status != 200 || !strings.Contains(body, `"web-1"`) {
		t.Fatalf("with the token: %d %s", status, body)
	}
	if status, body, _ := call(t, f, "GET", "/", secret, browserAccept); status != 200 || !strings.Contains(body, `id="who">ci`) {
		t.Errorf("dashboard with the token: %d, signed-in name not shown", status)
	}
	if got, _ := f.cat.AccessTokenFor(ctx, secretDigest(secret)); got.LastUsed.IsZero() {
		t.Error("the token's last use is not recorded")
	}
	// unknown, malformed, another kind of credential
	fleetCred := f.credFor(t, "web-1")
	for name, bad := range map[string]string{"unknown": bearerPrefix + strings.Repeat("A", 43), "agent credential": fleetCred, "fleet token": testToken} {
		if status, body, _ := call(t, f, "GET", "/api/hosts", bad, ""); status != 401 || !strings.Contains(body, "not known") {
			t.Errorf("%s as a reader's token: %d %s", name, status, body)
		}
	}
	// expired
	clk.Advance(time.Hour + time.Second)
	if status, body, _ := call(t, f, "GET", "/api/hosts", secret, ""); status != 401 || !strings.Contains(body, "expired") {
		t.Errorf("expired token: %d %s", status, body)
	}
	// revoked
	forever, _, err := CreateBearerToken(ctx, f.cat, "scraper", "tester", 0, clk.Now())
	must(t, err)
	if status, _, _ := call(t, f, "GET", "/metrics", forever, ""); status != 200 {
		t.Fatalf("scraper token: %d", status)
	}
	_, err = f.cat.RevokeBearerToken(ctx, "scraper")
	must(t, err)
	if status, body, _ := call(t, f, "GET", "/metrics", forever, ""); status != 401 || !strings.Contains(body, "revoked") {
		t.Errorf("revoked token: %d %s", status, body)
	}
	// open loopback (nothing required) still checks a token that is sent
	open := newFixture(t, sqliteBackend(), Config{})
	if status, _, _ := call(t, open, "GET", "/api/hosts", "", ""); status != 200 {
		t.Errorf("open server without a credential: %d", status)
	}
	if status, _, _ := call(t, open, "GET", "/api/hosts", "wrong", ""); status != 401 {
		t.Errorf("open server with a wrong token: %d", status)
	}
}

// oidcFixture is a server with sign-in through a local OIDC provider.
func oidcFixture(t *testing.T, m *mockoidc.MockOIDC, clk *testClock, mod func(*OIDCConfig)) *fixture {
	t.Helper()
	mc := m.Config()
	oc := &OIDCConfig{Issuer: mc.Issuer, ClientID: mc.ClientID, ClientSecret: mc.ClientSecret, Scopes: []string{"profile", "email", "groups"}}
	if mod != nil {
		mod(oc)
	}
	f := newFixture(t, sqliteBackend(), Config{Now: clk.Now, Auth: AuthConfig{OIDC: oc, SessionLifetime: 8 * time.Hour}})
	seedCatalog(t, f.cat)
	return f
}

func startOIDC(t *testing.T) *mockoidc.MockOIDC {
	t.Helper()
	m, err := mockoidc.Run()
	must(t, err)
	t.Cleanup(func() { _ = m.Shutdown() })
	return m
}

// browser is a client with a cookie jar that follows redirects, as a
// person's browser does.
func browser(t *testing.T, f *fixture) *http.Client {
	jar, err := cookiejar.New(nil)
	must(t, err)
	return &http.Client{Transport: f.ts.Client().Transport, Jar: jar, Timeout: 30 * time.Second}
}

func browse(t *testing.T, c *http.Client, u string) (int, string, *url.URL) {
	t.Helper()
	req, err := http.NewRequest("GET", u, nil)
	must(t, err)
	req.Header.Set("Accept", browserAccept)
	resp, err := c.Do(req)
	must(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Request.URL
}

// TestOIDCSignIn: a browser is sent to the provider and back, gets a
// session that every replica honours, and signs out; a program gets 401;
// expired, foreign and mis-addressed ID tokens are refused; the allowed
// groups are enforced.
func TestOIDCSignIn(t *testing.T) {
	m := startOIDC(t)
	clk := &testClock{}
	f := oidcFixture(t, m, clk, nil)
	report(t, f, validReport("web-1"))

	if status, _, h := call(t, f, "GET", "/hosts/web-1", "", browserAccept); status != http.StatusSeeOther || h.Get("Location") != "/auth/login?next=%2Fhosts%2Fweb-1" {
		t.Fatalf("browser without a session: %d to %q", status, h.Get("Location"))
	}
	if status, _, _ := call(t, f, "GET", "/api/hosts", "", ""); status != 401 {
		t.Fatalf("program without a credential: %d", status)
	}
	m.QueueUser(&mockoidc.MockUser{Subject: "u-1", Email: "jane@contoso.example", EmailVerified: true, PreferredUsername: "jane@contoso.example", Groups: []string{"fleet-readers"}})
	b := browser(t, f)
	status, body, at := browse(t, b, f.ts.URL+"/hosts/web-1")
	if status != 200 || at.Path != "/hosts/web-1" || !strings.Contains(body, `id="who">jane@contoso.example`) || !strings.Contains(body, "web-1") {
		t.Fatalf("after sign-in: %d at %s:\n%s", status, at, body)
	}
	base, _ := url.Parse(f.ts.URL)
	var session string
	for _, c := range b.Jar.Cookies(base) {
		if c.Name == "__Host-"+sessionCookieName {
			session = c.Value
		}
	}
	if !strings.HasPrefix(session, sessionPrefix) {
		t.Fatalf("no session cookie: %v", b.Jar.Cookies(base))
	}
	got, err := f.cat.AccessTokenFor(context.Background(), secretDigest(session))
	if err != nil || got.Kind != catalog.TokenSession || got.Subject != "u-1" || got.ExpiresAt.Sub(clk.Now()) > 8*time.Hour {
		t.Fatalf("session in the catalog: %+v %v", got, err)
	}
	// a second replica on the same catalog honours the session
	srv2, err := New(Config{Catalog: f.cat, AgentToken: testToken, Now: clk.Now, Auth: f.srv.cfg.Auth})
	must(t, err)
	ts2 := httptest.NewTLSServer(srv2.Handler())
	t.Cleanup(ts2.Close)
	req, _ := http.NewRequest("GET", ts2.URL+"/api/hosts/web-1", nil)
	req.AddCookie(&http.Cookie{Name: "__Host-" + sessionCookieName, Value: session})
	resp, err := ts2.Client().Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("the other replica refuses the session: %d", resp.StatusCode)
	}
	// sign out ends it for every replica
	lreq, _ := http.NewRequest("POST", f.ts.URL+"/auth/logout", nil)
	lresp, err := b.Do(lreq)
	must(t, err)
	lresp.Body.Close()
	resp, err = ts2.Client().Do(req)
	must(t, err)
	resp.Body.Close()
	if lresp.StatusCode != 200 || resp.StatusCode != 401 {
		t.Errorf("sign-out %d; the ended session then gets %d", lresp.StatusCode, resp.StatusCode)
	}

	// a session expires
	b2 := browser(t, f)
	if status, _, _ := browse(t, b2, f.ts.URL+"/"); status != 200 {
		t.Fatalf("second sign-in: %d", status)
	}
	clk.Advance(8*time.Hour + time.Minute)
	c := *b2
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	req, _ = http.NewRequest("GET", f.ts.URL+"/images", nil)
	req.Header.Set("Accept", browserAccept)
	resp, err = c.Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/auth/login") {
		t.Errorf("expired session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	clk.Advance(-(8*time.Hour + time.Minute))

	// ID tokens of the issuer, as bearer tokens
	mc := m.Config()
	idToken := func(kp *mockoidc.Keypair, aud string, exp time.Time) string {
		t.Helper()
		s, err := kp.SignJWT(jwt.MapClaims{"iss": mc.Issuer, "aud": aud, "sub": "svc-1", "preferred_username": "deploy-bot",
			"iat": time.Now().Add(-time.Minute).Unix(), "exp": exp.Unix(), "groups": []string{"fleet-readers"}})
		must(t, err)
		return s
	}
	if status, body, _ := call(t, f, "GET", "/api/hosts", idToken(m.Keypair, mc.ClientID, time.Now().Add(time.Hour)), ""); status != 200 || !strings.Contains(body, "web-1") {
		t.Errorf("a valid ID token as bearer: %d %s", status, body)
	}
	foreign, err := mockoidc.RandomKeypair(2048)
	must(t, err)
	for name, tok := range map[string]string{
		"expired":        idToken(m.Keypair, mc.ClientID, time.Now().Add(-time.Minute)),
		"foreign key":    idToken(foreign, mc.ClientID, time.Now().Add(time.Hour)),
		"other audience": idToken(m.Keypair, "another-app", time.Now().Add(time.Hour)),
	} {
		if status, body, _ := call(t, f, "GET", "/api/hosts", tok, ""); status != 401 || !strings.Contains(body, "ID token is not valid") {
			t.Errorf("%s ID token: %d %s", name, status, body)
		}
	}

	// an ID token that is already expired when the code is exchanged
	m.AccessTTL = -time.Minute
	status, body, _ = browse(t, browser(t, f), f.ts.URL+"/")
	m.AccessTTL = 10 * time.Minute
	if status != 401 || !strings.Contains(body, "expired") {
		t.Errorf("sign-in with an expired ID token: %d %s", status, body)
	}
	// a callback that was not started here
	if status, body, _ := call(t, f, "GET", "/auth/callback?code=x&state=forged", "", browserAccept); status != 400 || !strings.Contains(body, "not started here") {
		t.Errorf("forged callback: %d %s", status, body)
	}
	if got := localPath("//evil.example/x"); got != "/" {
		t.Errorf("localPath kept an off-site destination: %q", got)
	}
}

func TestOIDCAllowedGroupsAndDomains(t *testing.T) {
	m := startOIDC(t)
	clk := &testClock{}
	f := oidcFixture(t, m, clk, func(o *OIDCConfig) {
		o.AllowedGroups = []string{"fleet-readers"}
		o.AllowedDomains = []string{"contoso.example"}
	})
	for _, c := range []struct {
		name string
		user *mockoidc.MockUser
		want int
		says string
	}{
		{"in the group and domain", &mockoidc.MockUser{Subject: "a", Email: "a@contoso.example", EmailVerified: true, Groups: []string{"fleet-readers"}}, 200, "a@contoso.example"},
		{"no allowed group", &mockoidc.MockUser{Subject: "b", Email: "b@contoso.example", EmailVerified: true, Groups: []string{"engineering"}}, 403, "none of the allowed groups"},
		{"other domain", &mockoidc.MockUser{Subject: "c", Email: "c@fabrikam.example", EmailVerified: true, Groups: []string{"fleet-readers"}}, 403, "not in an allowed domain"},
		{"unverified email", &mockoidc.MockUser{Subject: "d", Email: "d@contoso.example", Groups: []string{"fleet-readers"}}, 403, "no verified email"},
	} {
		m.QueueUser(c.user)
		status, body, _ := browse(t, browser(t, f), f.ts.URL+"/")
		if status != c.want || !strings.Contains(body, c.says) {
			t.Errorf("%s: %d, want %d saying %q:\n%s", c.name, status, c.want, c.says, body)
		}
	}
}

// FuzzSignInInputs sends what a browser controls at sign-in (the page to
// return to, the login cookie, the state) and checks that the server never
// sends it off-site, never fails with a 5xx of its own, and never signs in.
func FuzzSignInInputs(f *testing.F) {
	cat, err := catalog.Open(context.Background(), filepath.Join(f.TempDir(), "c.db"))
	if err != nil {
		f.Fatal(err)
	}
	defer cat.Close()
	// an issuer nobody answers at: discovery fails fast, after the checks
	srv, err := New(Config{Catalog: cat, Auth: AuthConfig{OIDC: &OIDCConfig{Issuer: "http://127.0.0.1:1", ClientID: "c",
		HTTPClient: &http.Client{Timeout: time.Second}}}})
	if err != nil {
		f.Fatal(err)
	}
	h := srv.Handler()
	good, _ := json.Marshal(loginState{State: "s", Nonce: "n", Verifier: "v", Next: "/x"})
	f.Add("/hosts/web-1", base64.RawURLEncoding.EncodeToString(good), "s")
	f.Add("//evil.example/", "e30", "")
	f.Add("/\\evil.example", "!!", "s")
	f.Add("/\t/evil.example", "", "")
	f.Add("https://evil.example/", base64.RawURLEncoding.EncodeToString([]byte(`{"s":"","next":"//x"}`)), "")
	f.Fuzz(func(t *testing.T, next, cookie, state string) {
		p := localPath(next)
		// as a browser reads it: tabs and newlines dropped, backslashes as slashes
		b := strings.ReplaceAll(strings.Map(func(r rune) rune {
			if r == '\t' || r == '\n' || r == '\r' {
				return -1
			}
			return r
		}, p), "\\", "/")
		if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(b, "/") || strings.HasPrefix(b, "//") {
			t.Fatalf("localPath(%q) = %q leaves the site", next, p)
		}
		req := httptest.NewRequest("GET", "/auth/callback?code=c&state="+url.QueryEscape(state), nil)
		req.AddCookie(&http.Cookie{Name: loginCookieName, Value: url.QueryEscape(cookie)})
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadRequest && rec.Code != http.StatusBadGateway {
			t.Fatalf("callback with cookie %q state %q: %d", cookie, state, rec.Code)
		}
		if strings.Contains(rec.Header().Get("Set-Cookie"), sessionCookieName+"=imgps_") {
			t.Fatal("a session was made")
		}
		req = httptest.NewRequest("GET", "/auth/login?next="+url.QueryEscape(next), nil)
		rec = httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusBadGateway { // the issuer cannot be reached
			t.Fatalf("login: %d", rec.Code)
		}
	})
}
