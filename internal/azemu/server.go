// Package azemu is a local emulator of the Azure Resource Manager endpoints
// imgpipe uses: resource groups, managed images, compute galleries with image
// definitions and versions, managed disks with direct upload, virtual machines
// and scale sets (as consumers of images), and role assignments on galleries.
//
// It speaks the ARM REST protocol over TLS on loopback so the unmodified Azure
// SDK for Go talks to it: api-version checks, create-or-update with
// provisioningState, long-running operations through Azure-AsyncOperation and
// Location headers, paging with nextLink, the standard error body, and an
// OAuth token endpoint for azidentity's client-secret credential.
//
// It imports nothing from the code it emulates for (see depcheck_test.go).
package azemu

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"

	"imgpipe/internal/atomicfile"
)

// Server is a running (or ready to run) emulator.
type Server struct {
	mu   sync.Mutex
	opts Options
	st   *state
	rng  *mrand.Rand
	// lroRng decides which long-running operations fail (Faults.LROFailure),
	// a stream of its own: which operations fail does not depend on how
	// many other requests came before them.
	lroRng *mrand.Rand
	cert   tls.Certificate
	caPEM  []byte

	ln   net.Listener
	http *http.Server
	url  string
	done chan struct{}
}

// New prepares an emulator: loads the state from opts.StateDir if set, and
// creates (or reloads) its TLS certificate.
func New(opts Options) (*Server, error) {
	opts = opts.withDefaults()
	if opts.ReplicaPolicy != ReplicaPolicyStrict && opts.ReplicaPolicy != ReplicaPolicyCurrent {
		return nil, fmt.Errorf("azemu: replica policy %q: use %q or %q", opts.ReplicaPolicy, ReplicaPolicyStrict, ReplicaPolicyCurrent)
	}
	for name, v := range map[string]float64{"throttle": opts.Faults.Throttle, "server error": opts.Faults.ServerError, "LRO failure": opts.Faults.LROFailure, "drop": opts.Faults.Drop} {
		if v < 0 || v > 1 {
			return nil, fmt.Errorf("azemu: %s fault fraction %v: use a number between 0 and 1", name, v)
		}
	}
	if f := opts.Faults; f.Throttle+f.ServerError+f.Drop > 1 {
		return nil, fmt.Errorf("azemu: throttle, server error and drop fractions add up to more than 1")
	}
	s := &Server{opts: opts, rng: mrand.New(mrand.NewPCG(opts.Faults.Seed, 0x9e3779b97f4a7c15)), lroRng: mrand.New(mrand.NewPCG(opts.Faults.Seed, 0x5851f42d4c957f2d))}
	st, err := loadState(opts.StateDir)
	if err != nil {
		return nil, err
	}
	s.st = st
	s.registerStorageAccount()
	if len(s.st.TokenKey) == 0 {
		s.st.TokenKey = make([]byte, 32)
		if _, err := rand.Read(s.st.TokenKey); err != nil {
			return nil, err
		}
		if err := s.saveLocked(); err != nil {
			return nil, err
		}
	}
	if err := s.loadOrCreateCert(); err != nil {
		return nil, err
	}
	return s, nil
}

// Start listens on addr (host:port; use 127.0.0.1:0 for a random port) and
// serves in the background until Close.
func (s *Server) Start(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("azemu: listen on %s: %w", addr, err)
	}
	s.ln = ln
	s.url = "https://" + ln.Addr().String()
	s.http = &http.Server{
		Handler:           s,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 10 * time.Second,
		// HTTP/1.1 only, so an injected drop closes a real connection
		// (hijacking is not possible on HTTP/2 streams).
		TLSNextProto: map[string]func(*http.Server, *tls.Conn, http.Handler){},
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	s.done = make(chan struct{})
	go func() {
		defer close(s.done)
		_ = s.http.ServeTLS(ln, "", "")
	}()
	return nil
}

// Close stops the server and waits for it to finish.
func (s *Server) Close() error {
	if s.http == nil {
		return nil
	}
	err := s.http.Close()
	<-s.done
	return err
}

// URL is the https base URL (ARM endpoint and authority host).
func (s *Server) URL() string { return s.url }

// CACertPEM is the PEM certificate clients must trust.
func (s *Server) CACertPEM() []byte { return s.caPEM }

// Options returns the effective options.
func (s *Server) Options() Options {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.opts
}

// SetReplicaPolicy changes the replica policy of a running emulator.
func (s *Server) SetReplicaPolicy(p string) error {
	if p != ReplicaPolicyStrict && p != ReplicaPolicyCurrent {
		return fmt.Errorf("azemu: replica policy %q: use %q or %q", p, ReplicaPolicyStrict, ReplicaPolicyCurrent)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.ReplicaPolicy = p
	return nil
}

// SetDeleteConflictWindow changes how long CannotDeleteResource persists
// after the last child's delete completed.
func (s *Server) SetDeleteConflictWindow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.DeleteConflictWindow = d
}

// SetPageSize changes the list page size; it returns a func restoring the
// previous one.
func (s *Server) SetPageSize(n int) (restore func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old := s.opts.PageSize
	s.opts.PageSize = n
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.opts.PageSize = old
	}
}

// SetFaults changes the injected faults (and reseeds their generator).
func (s *Server) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.Faults = f
	s.rng = mrand.New(mrand.NewPCG(f.Seed, 0x9e3779b97f4a7c15))
	s.lroRng = mrand.New(mrand.NewPCG(f.Seed, 0x5851f42d4c957f2d))
}

// Cloud returns the cloud configuration pointing the SDK at this emulator:
// ARM endpoint and Microsoft Entra authority host are both the emulator.
func (s *Server) Cloud() cloud.Configuration {
	return cloud.Configuration{
		ActiveDirectoryAuthorityHost: s.url + "/",
		Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {
				Audience: "https://management.azure.com/",
				Endpoint: s.url,
			},
		},
	}
}

func (s *Server) loadOrCreateCert() error {
	var certPath, keyPath string
	if s.opts.StateDir != "" {
		certPath = filepath.Join(s.opts.StateDir, "ca-cert.pem")
		keyPath = filepath.Join(s.opts.StateDir, "ca-key.pem")
		certPEM, err1 := os.ReadFile(certPath)
		keyPEM, err2 := os.ReadFile(keyPath)
		if err1 == nil && err2 == nil {
			c, err := tls.X509KeyPair(certPEM, keyPEM)
			if err == nil && c.Leaf != nil && time.Now().Before(c.Leaf.NotAfter) {
				s.cert, s.caPEM = c, certPEM
				return nil
			}
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "azemu local ARM emulator", Organization: []string{"imgpipe"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	c, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return err
	}
	s.cert, s.caPEM = c, certPEM
	if certPath != "" {
		if err := atomicfile.WriteFile(keyPath, keyPEM, 0o600); err != nil {
			return err
		}
		if err := atomicfile.WriteFile(certPath, certPEM, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// ServeHTTP routes a request: token endpoints, then ARM.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	isToken := s.isTokenPath(r.URL.Path)
	if !isToken || s.Options().Faults.IncludeToken {
		if s.injectFault(w, r) {
			return
		}
	}
	if isToken {
		s.serveToken(w, r)
		return
	}
	if !s.authorized(r) {
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer authorization_uri="%s/%s", error="invalid_token", error_description="The access token is missing or invalid."`, s.url, s.opts.TenantID))
		writeError(w, http.StatusUnauthorized, "InvalidAuthenticationToken", "The access token is missing or invalid.", "")
		return
	}
	s.serveARM(w, r)
}

// injectFault answers the request with a fault when the dice say so.
func (s *Server) injectFault(w http.ResponseWriter, r *http.Request) bool {
	s.mu.Lock()
	f := s.opts.Faults
	if !f.active() {
		s.mu.Unlock()
		return false
	}
	x := s.rng.Float64()
	s.mu.Unlock()
	switch {
	case x < f.Drop:
		slog.Debug("azemu fault: drop connection", "path", r.URL.Path)
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return true
			}
		}
		panic(http.ErrAbortHandler)
	case x < f.Drop+f.Throttle:
		slog.Debug("azemu fault: throttle", "path", r.URL.Path)
		s.setRetryAfter(w)
		writeError(w, http.StatusTooManyRequests, "TooManyRequests", "The request is being throttled (injected fault). Retry after the delay in the Retry-After header.", "")
		return true
	case x < f.Drop+f.Throttle+f.ServerError:
		slog.Debug("azemu fault: server error", "path", r.URL.Path)
		writeError(w, http.StatusInternalServerError, "InternalServerError", "An internal server error occurred (injected fault). Please retry the request.", "")
		return true
	}
	return false
}

func (s *Server) setRetryAfter(w http.ResponseWriter) {
	d := s.opts.RetryAfter
	secs := int((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	if d%time.Second != 0 {
		w.Header().Set("retry-after-ms", strconv.FormatInt(d.Milliseconds(), 10))
	}
}

// ---- token endpoint (Microsoft Entra ID client-credentials subset) ----

func (s *Server) isTokenPath(p string) bool {
	return strings.Contains(p, "/.well-known/openid-configuration") ||
		strings.HasSuffix(p, "/oauth2/v2.0/token") || strings.HasSuffix(p, "/oauth2/token") ||
		strings.HasSuffix(p, "/discovery/instance")
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	tenant := segs[0]
	if tenant != s.opts.TenantID && tenant != "common" && tenant != "organizations" {
		writeJSON(w, http.StatusBadRequest, map[string]any{
			"error":             "invalid_tenant",
			"error_description": fmt.Sprintf("AADSTS90002: Tenant '%s' not found. Use tenant %s.", tenant, s.opts.TenantID),
		})
		return
	}
	if strings.Contains(r.URL.Path, "openid-configuration") {
		base := s.url + "/" + tenant
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":                        base + "/oauth2/v2.0/token",
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"issuer":                                base + "/v2.0",
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"tenant_region_scope":                   "EU",
		})
		return
	}
	if strings.HasSuffix(r.URL.Path, "/discovery/instance") {
		writeJSON(w, http.StatusOK, map[string]any{
			"tenant_discovery_endpoint": s.url + "/" + tenant + "/v2.0/.well-known/openid-configuration",
			"api-version":               "1.1",
			"metadata":                  []any{},
		})
		return
	}
	if r.Method != http.MethodPost {
		writeJSON(w, http.StatusMethodNotAllowed, map[string]any{"error": "invalid_request", "error_description": "AADSTS900561: The endpoint only accepts POST requests."})
		return
	}
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "invalid_request", "error_description": "AADSTS900144: malformed form body"})
		return
	}
	clientID, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if u, p, ok := r.BasicAuth(); ok {
		clientID, secret = u, p
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unsupported_grant_type", "error_description": "AADSTS70003: only client_credentials is emulated"})
		return
	}
	cl, known := s.client(clientID)
	if !known {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": "unauthorized_client", "error_description": fmt.Sprintf("AADSTS700016: Application with identifier '%s' was not found in the directory.", clientID)})
		return
	}
	if !hmac.Equal([]byte(secret), []byte(cl.ClientSecret)) {
		writeJSON(w, http.StatusUnauthorized, map[string]any{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
		return
	}
	exp := time.Now().Add(time.Hour)
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     3599,
		"ext_expires_in": 3599,
		"access_token":   s.mintToken(cl, exp),
	})
}

type tokenClaims struct {
	ClientID string `json:"appid"`
	ObjectID string `json:"oid"`
	Tenant   string `json:"tid"`
	Expires  int64  `json:"exp"`
}

// client returns the identity with that client id: the main one or one of
// Options.ExtraClients.
func (s *Server) client(clientID string) (Client, bool) {
	if clientID == s.opts.ClientID {
		return Client{ClientID: s.opts.ClientID, ClientSecret: s.opts.ClientSecret, ObjectID: s.opts.ObjectID}, true
	}
	for _, c := range s.opts.ExtraClients {
		if c.ClientID == clientID && c.ClientID != "" {
			return c, true
		}
	}
	return Client{}, false
}

func (s *Server) mintToken(cl Client, exp time.Time) string {
	c := tokenClaims{ClientID: cl.ClientID, ObjectID: cl.ObjectID, Tenant: s.opts.TenantID, Expires: exp.Unix()}
	payload, _ := json.Marshal(c)
	p := base64.RawURLEncoding.EncodeToString(payload)
	return "azemu." + p + "." + s.sign(p)
}

func (s *Server) sign(p string) string {
	m := hmac.New(sha256.New, s.st.TokenKey)
	m.Write([]byte(p))
	return hex.EncodeToString(m.Sum(nil))
}

func (s *Server) parseToken(tok string) (tokenClaims, error) {
	var c tokenClaims
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "azemu" {
		return c, errors.New("malformed token")
	}
	want := s.sign(parts[1]) // the key never changes after New: no lock
	if !hmac.Equal([]byte(want), []byte(parts[2])) {
		return c, errors.New("bad signature")
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, err
	}
	if time.Now().Unix() > c.Expires {
		return c, errors.New("token expired")
	}
	return c, nil
}

func (s *Server) authorized(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok {
		return false
	}
	_, err := s.parseToken(tok)
	return err == nil
}

func callerObjectID(s *Server, r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, err := s.parseToken(tok)
	if err != nil {
		return ""
	}
	return c.ObjectID
}
