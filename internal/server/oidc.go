package server

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"imgpipe/internal/catalog"
)

// OIDCConfig lets people sign in with OpenID Connect (authorization code
// flow with PKCE). For Entra ID the issuer is
// https://login.microsoftonline.com/TENANT-ID/v2.0 (a tenant's own, so only
// its users get in) and the client is an app registration whose redirect
// URI is PUBLIC-URL/auth/callback.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// PublicURL is the server's address as browsers reach it (the redirect
	// URI is PublicURL + /auth/callback); empty: taken from each request.
	PublicURL string
	// Scopes requested besides openid (default profile, email).
	Scopes []string
	// AllowedGroups: when set, a person needs one of these in the ID
	// token's groups or roles claim (Entra ID: group object ids or app
	// role values).
	AllowedGroups []string
	// AllowedDomains: when set, a person's verified email (or, from Entra
	// ID, upn) must be in one of these domains.
	AllowedDomains []string
	// HTTPClient talks to the issuer (nil: a client with a 30 s timeout).
	HTTPClient *http.Client
}

// oidcAuth is the sign-in side of a server. The provider's metadata and
// keys are fetched on first use (and again after a failure), so a server
// starts while the issuer is unreachable.
type oidcAuth struct {
	cfg OIDCConfig
	now func() time.Time

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDC(cfg OIDCConfig, now func() time.Time) (*oidcAuth, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" {
		return nil, errors.New("OIDC sign-in needs an issuer and a client id (--oidc-issuer, --oidc-client-id)")
	}
	if u, err := url.Parse(cfg.Issuer); err != nil || (u.Scheme != "https" && !isLoopbackURL(u)) {
		return nil, fmt.Errorf("OIDC issuer %q: give an https URL (e.g. https://login.microsoftonline.com/TENANT-ID/v2.0)", cfg.Issuer)
	}
	if cfg.PublicURL != "" {
		u, err := url.Parse(cfg.PublicURL)
		if err != nil || u.Host == "" || (u.Scheme != "https" && !isLoopbackURL(u)) {
			return nil, fmt.Errorf("public URL %q: give the https URL browsers reach the server at", cfg.PublicURL)
		}
		cfg.PublicURL = strings.TrimSuffix(cfg.PublicURL, "/")
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"profile", "email"}
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	return &oidcAuth{cfg: cfg, now: now}, nil
}

func isLoopbackURL(u *url.URL) bool {
	h := u.Hostname()
	return h == "localhost" || strings.HasPrefix(h, "127.") || h == "::1"
}

func (o *oidcAuth) ctx(ctx context.Context) context.Context {
	return oidc.ClientContext(ctx, o.cfg.HTTPClient)
}

func (o *oidcAuth) getProvider(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(o.ctx(ctx), o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s: %w", o.cfg.Issuer, err)
	}
	o.provider = p
	return p, nil
}

func (o *oidcAuth) verifier(p *oidc.Provider) *oidc.IDTokenVerifier {
	return p.Verifier(&oidc.Config{ClientID: o.cfg.ClientID, Now: o.now})
}

func (o *oidcAuth) oauth2(p *oidc.Provider, r *http.Request) *oauth2.Config {
	base := o.cfg.PublicURL
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, Endpoint: p.Endpoint(),
		RedirectURL: base + "/auth/callback", Scopes: append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...)}
}

// claims are the ID token claims a person is named and admitted by.
type claims struct {
	Subject           string          `json:"sub"`
	Name              string          `json:"name"`
	PreferredUsername string          `json:"preferred_username"`
	Email             string          `json:"email"`
	EmailVerified     *bool           `json:"email_verified"`
	UPN               string          `json:"upn"`
	Groups            []string        `json:"groups"`
	Roles             []string        `json:"roles"`
	ClaimNames        json.RawMessage `json:"_claim_names"`
}

func (c claims) who() string {
	for _, s := range []string{c.PreferredUsername, c.Email, c.UPN, c.Name} {
		if s != "" {
			return s
		}
	}
	return c.Subject
}

// admit applies the allowed groups and domains.
func (o *oidcAuth) admit(c claims) error {
	if len(o.cfg.AllowedGroups) > 0 {
		ok := false
		for _, g := range append(slices.Clone(c.Groups), c.Roles...) {
			if slices.Contains(o.cfg.AllowedGroups, g) {
				ok = true
			}
		}
		if !ok {
			if len(c.Groups) == 0 && strings.Contains(string(c.ClaimNames), "groups") {
				return fmt.Errorf("%s is in too many groups for the ID token to list them (Entra ID group overage): admit by app role instead (--oidc-allowed-group takes role values)", c.who())
			}
			return fmt.Errorf("%s is in none of the allowed groups or roles", c.who())
		}
	}
	if len(o.cfg.AllowedDomains) > 0 {
		addr := ""
		if c.Email != "" && c.EmailVerified != nil && *c.EmailVerified {
			addr = c.Email
		} else if c.UPN != "" {
			addr = c.UPN
		}
		_, domain, _ := strings.Cut(addr, "@")
		ok := false
		for _, d := range o.cfg.AllowedDomains {
			if domain != "" && strings.EqualFold(domain, d) {
				ok = true
			}
		}
		if !ok {
			if addr == "" {
				return fmt.Errorf("%s has no verified email or upn claim to check the allowed domains against", c.who())
			}
			return fmt.Errorf("%s is not in an allowed domain", addr)
		}
	}
	return nil
}

// bearer checks an ID token presented as a bearer token.
func (o *oidcAuth) bearer(ctx context.Context, raw string) (identity, error) {
	p, err := o.getProvider(ctx)
	if err != nil {
		return identity{}, err
	}
	tok, err := o.verifier(p).Verify(o.ctx(ctx), raw)
	if err != nil {
		return identity{}, fmt.Errorf("the ID token is not valid for this server: %w", err)
	}
	var c claims
	if err := tok.Claims(&c); err != nil {
		return identity{}, fmt.Errorf("the ID token's claims: %w", err)
	}
	if err := o.admit(c); err != nil {
		return identity{}, err
	}
	return identity{Name: c.who(), Kind: "oidc"}, nil
}

// ---- cookies ------------------------------------------------------------------

// Cookie names: with TLS the __Host- prefix pins them to this host, path /
// and Secure.
func cookieName(r *http.Request, base string) string {
	if r.TLS != nil {
		return "__Host-" + base
	}
	return base
}

const (
	sessionCookieName = "imgpipe_session"
	loginCookieName   = "imgpipe_login"
)

func sessionCookie(r *http.Request) string {
	if c, err := r.Cookie(cookieName(r, sessionCookieName)); err == nil {
		return c.Value
	}
	return ""
}

func setCookie(w http.ResponseWriter, r *http.Request, base, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: cookieName(r, base), Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteLaxMode})
}

func clearSessionCookie(w http.ResponseWriter, r *http.Request) {
	if sessionCookie(r) != "" {
		setCookie(w, r, sessionCookieName, "", -1)
	}
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// localPath keeps a post-sign-in destination on this server.
func localPath(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	// browsers drop tabs and newlines from URLs ("/\t/evil" becomes "//evil")
	if strings.IndexFunc(next, func(r rune) bool { return r < 0x20 || r == 0x7f }) >= 0 {
		return "/"
	}
	// a path that does not parse ("/%") is no page of ours to return to
	if u, err := url.Parse(next); err != nil || u.Scheme != "" || u.Host != "" {
		return "/"
	}
	return next
}

// loginState travels in a short-lived cookie from /auth/login to
// /auth/callback (which may be served by another replica).
type loginState struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"next"`
}

// ---- routes ---------------------------------------------------------------------

func (s *Server) authRoutes(m *http.ServeMux) {
	m.HandleFunc("GET /auth/login", s.authLogin)
	m.HandleFunc("GET /auth/callback", s.authCallback)
	m.HandleFunc("POST /auth/logout", s.authLogout)
}

func (s *Server) signInError(w http.ResponseWriter, r *http.Request, status int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	slog.Warn("sign-in refused", "reason", msg)
	s.renderStatus(w, r, status, "error.html", map[string]any{"Title": "sign in", "Status": status, "Message": msg, "SignIn": s.oidc != nil})
}

func (s *Server) authLogin(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.signInError(w, r, http.StatusNotFound, "sign-in is not configured on this server: start serve with --oidc-issuer and --oidc-client-id, or send a bearer token")
		return
	}
	p, err := s.oidc.getProvider(r.Context())
	if err != nil {
		slog.Error("oidc", "err", err)
		s.signInError(w, r, http.StatusBadGateway, "the sign-in provider cannot be reached; try again later")
		return
	}
	st := loginState{Next: localPath(r.URL.Query().Get("next")), Verifier: oauth2.GenerateVerifier()}
	for _, f := range []*string{&st.State, &st.Nonce} {
		if *f, err = newSecret(""); err != nil {
			s.signInError(w, r, http.StatusInternalServerError, "%v", err)
			return
		}
	}
	b, _ := json.Marshal(st)
	setCookie(w, r, loginCookieName, base64.RawURLEncoding.EncodeToString(b), 600)
	http.Redirect(w, r, s.oidc.oauth2(p, r).AuthCodeURL(st.State, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)), http.StatusSeeOther)
}

func (s *Server) authCallback(w http.ResponseWriter, r *http.Request) {
	if s.oidc == nil {
		s.signInError(w, r, http.StatusNotFound, "sign-in is not configured on this server")
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		s.signInError(w, r, http.StatusForbidden, "the sign-in provider refused: %s %s", clipErr(errors.New(e)), clipErr(errors.New(q.Get("error_description"))))
		return
	}
	var st loginState
	c, err := r.Cookie(cookieName(r, loginCookieName))
	if err == nil {
		var b []byte
		if b, err = base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			err = json.Unmarshal(b, &st)
		}
	}
	if err != nil || st.State == "" || subtle.ConstantTimeCompare([]byte(st.State), []byte(q.Get("state"))) != 1 {
		s.signInError(w, r, http.StatusBadRequest, "this sign-in was not started here, or took longer than 10 minutes: start again at /auth/login")
		return
	}
	setCookie(w, r, loginCookieName, "", -1)
	p, err := s.oidc.getProvider(r.Context())
	if err != nil {
		slog.Error("oidc", "err", err)
		s.signInError(w, r, http.StatusBadGateway, "the sign-in provider cannot be reached; try again later")
		return
	}
	ctx, cancel := context.WithTimeout(s.oidc.ctx(r.Context()), 30*time.Second)
	defer cancel()
	tok, err := s.oidc.oauth2(p, r).Exchange(ctx, q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.signInError(w, r, http.StatusBadGateway, "the sign-in code could not be exchanged: %s", clipErr(err))
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		s.signInError(w, r, http.StatusBadGateway, "the sign-in provider returned no ID token")
		return
	}
	idt, err := s.oidc.verifier(p).Verify(ctx, raw)
	if err != nil {
		s.signInError(w, r, http.StatusUnauthorized, "the ID token is not valid for this server: %s", clipErr(err))
		return
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		s.signInError(w, r, http.StatusUnauthorized, "the ID token was not issued for this sign-in (nonce): start again at /auth/login")
		return
	}
	var cl claims
	if err := idt.Claims(&cl); err != nil {
		s.signInError(w, r, http.StatusBadGateway, "the ID token's claims: %s", clipErr(err))
		return
	}
	if err := s.oidc.admit(cl); err != nil {
		s.signInError(w, r, http.StatusForbidden, "%v", err)
		return
	}
	secret, err := newSecret(sessionPrefix)
	if err != nil {
		s.signInError(w, r, http.StatusInternalServerError, "%v", err)
		return
	}
	now := s.cfg.Now()
	life := s.cfg.Auth.SessionLifetime
	if _, err := s.cfg.Catalog.AddAccessToken(r.Context(), catalog.AccessToken{Kind: catalog.TokenSession, Name: cl.who(), Subject: cl.Subject,
		CreatedBy: s.oidc.cfg.Issuer, ExpiresAt: now.Add(life)}, secretDigest(secret)); err != nil {
		slog.Error("sign-in", "err", err)
		s.signInError(w, r, http.StatusInternalServerError, "the session could not be recorded (see the server log)")
		return
	}
	// sessions that ended a day ago go: the table stays the size of the
	// people signed in
	if _, err := s.cfg.Catalog.PruneSessions(r.Context(), now.Add(-24*time.Hour)); err != nil {
		slog.Warn("sign-in", "err", err)
	}
	slog.Info("signed in", "who", cl.who(), "sub", cl.Subject)
	setCookie(w, r, sessionCookieName, secret, int(life/time.Second))
	http.Redirect(w, r, localPath(st.Next), http.StatusSeeOther)
}

func (s *Server) authLogout(w http.ResponseWriter, r *http.Request) {
	if c := sessionCookie(r); c != "" {
		if err := s.cfg.Catalog.EndSession(r.Context(), secretDigest(c)); err != nil {
			slog.Error("sign-out", "err", err)
			http.Error(w, "the session could not be ended (see the server log)", http.StatusInternalServerError)
			return
		}
		setCookie(w, r, sessionCookieName, "", -1)
	}
	s.render(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, identity{})), "error.html",
		map[string]any{"Title": "signed out", "Status": "Signed out", "Message": "Your session has ended.", "SignIn": s.oidc != nil})
}
