package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"imgpipe/internal/catalog"
)

// Who may read. Agents keep their own credentials (enrolment, host
// credentials) and the intake is not behind this; everything else that
// reads the fleet is, when AuthConfig.Required: the dashboard, the API and
// the metrics. A reader proves itself with one of
//
//   - a bearer token made with 'imgpipe serve token create' (catalog-stored,
//     SHA-256 only, revocable, optionally expiring): automation, scrapers;
//   - a browser session, made when a person signs in with OpenID Connect
//     (Entra ID or any other issuer): a random cookie whose SHA-256 is in
//     the catalog, so every replica honours it and sign-out ends it on all;
//   - an ID token of the configured issuer for this client, as a bearer.
//
// Without AuthConfig.Required (loopback, nothing configured) reads stay open
// as before, but a credential that is presented is still checked.

// AuthConfig says who may read the fleet server.
type AuthConfig struct {
	// Required makes every read need a credential. serve sets it when it
	// listens off loopback or OIDC is configured (AuthRequired).
	Required bool
	// OIDC, when set, lets people sign in.
	OIDC *OIDCConfig
	// SessionLifetime bounds a browser session (default 12h).
	SessionLifetime time.Duration
}

// AuthRequired says whether a server listening on listen must ask readers
// for a credential: off loopback always; on loopback when sign-in is
// configured or asked for (e.g. behind a reverse proxy on the same host).
func AuthRequired(listen string, oidc, force bool) bool {
	if oidc || force {
		return true
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return true
	}
	if strings.EqualFold(host, "localhost") {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err != nil || !ip.IsLoopback()
}

func (s *Server) setupAuth() error {
	a := &s.cfg.Auth
	if a.SessionLifetime <= 0 {
		a.SessionLifetime = 12 * time.Hour
	}
	if a.OIDC != nil {
		o, err := newOIDC(*a.OIDC, s.cfg.Now)
		if err != nil {
			return err
		}
		s.oidc, a.Required = o, true
	}
	return nil
}

// identity is who made a request.
type identity struct {
	Name    string // the person, or the bearer token's name
	Kind    string // catalog.TokenBearer, catalog.TokenSession, "oidc" (an ID token as bearer)
	Session bool   // a browser session (it can sign out)
}

type identityKey struct{}

func identityOf(r *http.Request) identity {
	id, _ := r.Context().Value(identityKey{}).(identity)
	return id
}

// Token secrets: a prefix that says what they are, then 32 random bytes.
const (
	bearerPrefix  = "imgp_"
	sessionPrefix = "imgps_"
)

func newSecret(prefix string) (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make a token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func secretDigest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateBearerToken makes a bearer token for automation, records its
// SHA-256 and returns the secret (shown once; the catalog cannot tell it
// again). ttl 0 means it never expires.
func CreateBearerToken(ctx context.Context, cat *catalog.Catalog, name, by string, ttl time.Duration, now time.Time) (string, catalog.AccessToken, error) {
	secret, err := newSecret(bearerPrefix)
	if err != nil {
		return "", catalog.AccessToken{}, err
	}
	t := catalog.AccessToken{Kind: catalog.TokenBearer, Name: name, CreatedBy: by}
	if ttl > 0 {
		t.ExpiresAt = now.Add(ttl).UTC()
	}
	t, err = cat.AddAccessToken(ctx, t, secretDigest(secret))
	if err != nil {
		return "", t, err
	}
	return secret, t, nil
}

// exempt are the routes that keep their own credentials or must answer
// anyone: the agents' intake, the Azure refresh (fleet token), health,
// the stylesheet and the sign-in pages.
func exempt(r *http.Request) bool {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && (p == "/api/reports" || p == "/api/enroll" || p == "/api/azure/refresh"):
		return true
	case p == "/healthz", strings.HasPrefix(p, "/static/"), strings.HasPrefix(p, "/auth/"):
		return true
	}
	return false
}

// errNoCredential: nothing was presented.
var errNoCredential = errors.New("no credential")

// authenticate puts the reader's identity in the request's context, and
// refuses a request without a valid credential when one is required: 401
// for programs, a redirect to sign-in for browsers when OIDC is set up.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if exempt(r) {
			next.ServeHTTP(w, r)
			return
		}
		id, err := s.identify(r)
		switch {
		case err == nil:
			next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), identityKey{}, id)))
			return
		case errors.Is(err, errNoCredential) && !s.cfg.Auth.Required:
			next.ServeHTTP(w, r)
			return
		}
		s.unauthorized(w, r, err)
	})
}

// identify finds the request's credential and checks it.
func (s *Server) identify(r *http.Request) (identity, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		tok, ok := strings.CutPrefix(h, "Bearer ")
		tok = strings.TrimSpace(tok)
		if !ok || tok == "" {
			return identity{}, errors.New("the Authorization header is not 'Bearer TOKEN'")
		}
		if s.oidc != nil && strings.Count(tok, ".") == 2 {
			return s.oidc.bearer(r.Context(), tok)
		}
		return s.catalogToken(r.Context(), tok, catalog.TokenBearer)
	}
	if c := sessionCookie(r); c != "" {
		return s.catalogToken(r.Context(), c, catalog.TokenSession)
	}
	return identity{}, errNoCredential
}

// touchEvery bounds the writes that record a token's last use.
const touchEvery = 5 * time.Minute

func (s *Server) catalogToken(ctx context.Context, secret, kind string) (identity, error) {
	t, err := s.cfg.Catalog.AccessTokenFor(ctx, secretDigest(secret))
	if errors.Is(err, catalog.ErrNotFound) || (err == nil && t.Kind != kind) {
		if kind == catalog.TokenSession {
			return identity{}, errors.New("the session is not known (signed out, or made for another server): sign in again")
		}
		return identity{}, errors.New("the bearer token is not known to this server's catalog")
	}
	if err != nil {
		return identity{}, err
	}
	now := s.cfg.Now()
	if err := t.Valid(now); err != nil {
		return identity{}, err
	}
	if now.Sub(t.LastUsed) > touchEvery {
		if err := s.cfg.Catalog.TouchAccessToken(ctx, t.ID, now); err != nil {
			slog.Warn("auth", "err", err)
		}
	}
	return identity{Name: t.Name, Kind: t.Kind, Session: kind == catalog.TokenSession}, nil
}

// wantsHTML says whether the request is a browser's page load.
func wantsHTML(r *http.Request) bool {
	if r.Method != http.MethodGet || strings.HasPrefix(r.URL.Path, "/api/") || r.URL.Path == "/metrics" {
		return false
	}
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

func (s *Server) unauthorized(w http.ResponseWriter, r *http.Request, err error) {
	msg := "this server needs a credential to read: send 'Authorization: Bearer TOKEN' (imgpipe serve token create NAME)"
	if s.oidc != nil {
		msg += " or sign in at /auth/login"
	}
	if !errors.Is(err, errNoCredential) {
		msg = "credential refused: " + err.Error()
	}
	if wantsHTML(r) && s.oidc != nil && r.Header.Get("Authorization") == "" {
		clearSessionCookie(w, r)
		http.Redirect(w, r, "/auth/login?next="+urlQueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="imgpipe"`)
	if wantsHTML(r) {
		s.renderStatus(w, r, http.StatusUnauthorized, "error.html", map[string]any{"Title": "sign in", "Status": http.StatusUnauthorized, "Message": msg})
		return
	}
	writeError(w, http.StatusUnauthorized, "%s", msg)
}
