// Package server is imgpipe's fleet server: the HTTP API and agent intake,
// a server-rendered dashboard, Prometheus metrics, and the pull of Azure's
// view of the fleet (VMs and scale sets and the gallery versions they run).
// Everything it shows comes from the catalog; it keeps only counters itself.
package server

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
)

// Config configures a server.
type Config struct {
	Catalog *catalog.Catalog
	// AgentToken is the fleet token: agents present it once to enrol (and
	// receive a credential bound to their host name); POST
	// /api/azure/refresh takes it too. Empty disables the intake (503).
	AgentToken string
	// BodyTimeout bounds the time a client has to send a request body
	// (default DefaultBodyTimeout).
	BodyTimeout time.Duration
	// Channel is the channel staleness is measured against (default prod).
	Channel string
	// Azure, when set, is pulled at Run's start, every AzureInterval, and on
	// POST /api/azure/refresh.
	Azure         *AzurePuller
	AzureInterval time.Duration
	// StaleAfter marks hosts not heard from for this long (default 24h).
	StaleAfter time.Duration
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Server serves the API, the dashboard and the metrics.
type Server struct {
	cfg Config
	mux *http.ServeMux

	accepted atomic.Int64
	rejMu    sync.Mutex
	rejected map[string]int64

	// intake bounds the reports being stored at once; beyond it agents get
	// 503 with Retry-After and come back later
	intake chan struct{}
	// readers bounds the bodies being received at once (before a slot)
	readers chan struct{}

	enrolled, enrolRefused atomic.Int64

	pullMu     sync.Mutex // one Azure pull at a time
	pulls      atomic.Int64
	pullErrors atomic.Int64
	lastPull   atomic.Pointer[PullResult]
}

// Reasons a report is rejected (the metrics label).
const (
	RejectUnauthorized = "unauthorized"
	RejectTooLarge     = "too_large"
	RejectBadJSON      = "bad_json"
	RejectInvalid      = "invalid"
	RejectMediaType    = "media_type"
	RejectDisabled     = "disabled"
	RejectStore        = "store_failed"
	RejectBusy         = "busy"
	RejectWrongHost    = "wrong_host"
	RejectSlowBody     = "slow_body"
)

var rejectReasons = []string{RejectUnauthorized, RejectTooLarge, RejectBadJSON, RejectInvalid, RejectMediaType, RejectDisabled, RejectStore, RejectBusy, RejectWrongHost, RejectSlowBody}

// MaxConcurrentReports bounds the agent reports processed at once.
const MaxConcurrentReports = 32

// New builds a server.
func New(cfg Config) (*Server, error) {
	if cfg.Catalog == nil {
		return nil, errors.New("server: no catalog")
	}
	if cfg.Channel == "" {
		cfg.Channel = "prod"
	}
	if cfg.AzureInterval <= 0 {
		cfg.AzureInterval = 10 * time.Minute
	}
	if cfg.StaleAfter <= 0 {
		cfg.StaleAfter = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BodyTimeout <= 0 {
		cfg.BodyTimeout = DefaultBodyTimeout
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(), rejected: map[string]int64{},
		intake: make(chan struct{}, MaxConcurrentReports), readers: make(chan struct{}, MaxBodyReaders)}
	for _, r := range rejectReasons {
		s.rejected[r] = 0
	}
	s.routes()
	return s, nil
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return securityHeaders(s.mux) }

func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /api/images", s.apiImages)
	m.HandleFunc("GET /api/images/{image}/versions", s.apiVersions)
	m.HandleFunc("GET /api/images/{image}/versions/{version}/{doc}", s.apiDocument)
	m.HandleFunc("GET /api/hosts", s.apiHosts)
	m.HandleFunc("GET /api/hosts/{name}", s.apiHost)
	m.HandleFunc("POST /api/reports", s.apiReport)
	m.HandleFunc("POST /api/enroll", s.apiEnroll)
	m.HandleFunc("POST /api/azure/refresh", s.apiAzureRefresh)
	m.HandleFunc("GET /metrics", s.metrics)
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	m.Handle("GET /static/", http.FileServerFS(staticFS))
	m.HandleFunc("GET /{$}", s.pageFleet)
	m.HandleFunc("GET /images", s.pageImages)
	m.HandleFunc("GET /hosts/{name}", s.pageHost)
	s.uiRoutes(m)
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; form-action 'self'; frame-ancestors 'none'")
		h.ServeHTTP(w, r)
	})
}

// Run pulls Azure (when configured) now and every AzureInterval until ctx
// ends. Failures are logged and counted, never fatal.
func (s *Server) Run(ctx context.Context) {
	if s.cfg.Azure == nil {
		<-ctx.Done()
		return
	}
	for {
		if _, err := s.PullAzure(ctx); err != nil && ctx.Err() == nil {
			slog.Warn("azure pull failed", "err", err)
		}
		t := time.NewTimer(s.cfg.AzureInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// PullAzure runs one Azure pull (serialised with any other).
func (s *Server) PullAzure(ctx context.Context) (*PullResult, error) {
	if s.cfg.Azure == nil {
		return nil, errors.New("no Azure subscriptions configured: start serve with --azure-subscription")
	}
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	s.pulls.Add(1)
	res, err := s.cfg.Azure.Pull(ctx, s.cfg.Catalog)
	if err != nil {
		s.pullErrors.Add(1)
		return res, err
	}
	s.lastPull.Store(res)
	return res, nil
}

// ---- helpers ------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, status int, format string, a ...any) {
	writeJSON(w, status, apiError{Error: fmt.Sprintf(format, a...)})
}

func (s *Server) catalogError(w http.ResponseWriter, err error) {
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		writeError(w, http.StatusNotFound, "%v", err)
	case errors.Is(err, catalog.ErrInvalid):
		writeError(w, http.StatusBadRequest, "%v", err)
	default:
		slog.Error("catalog", "err", err)
		writeError(w, http.StatusInternalServerError, "catalog error (see the server log)")
	}
}

// bearerOK compares the request's bearer token with the configured one in
// constant time.
func (s *Server) bearerOK(r *http.Request) bool {
	h := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || s.cfg.AgentToken == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(tok), []byte(s.cfg.AgentToken)) == 1
}

func (s *Server) reject(w http.ResponseWriter, reason string, status int, format string, a ...any) {
	s.rejMu.Lock()
	s.rejected[reason]++
	s.rejMu.Unlock()
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "2")
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="imgpipe"`)
	}
	writeError(w, status, format, a...)
}

// ---- host state stored in the catalog ---------------------------------------------

// Sources of a host's record.
const (
	SourceAgent = "agent"
	SourceAzure = "azure"
)

// HostState is what the server keeps per host in the catalog's drift
// summary: the last agent report (Source agent), or what Azure says about a
// VM or scale set (Source azure).
type HostState struct {
	Source     string         `json:"source"`
	OS         string         `json:"os,omitempty"`
	BuildID    string         `json:"build_id,omitempty"`
	Depth      string         `json:"depth,omitempty"`
	CheckedAt  time.Time      `json:"checked_at,omitzero"`
	DurationMS int64          `json:"duration_ms,omitempty"`
	Drifted    bool           `json:"drifted,omitempty"`
	Summary    *drift.Summary `json:"summary,omitempty"`
	Changes    []agent.Change `json:"changes,omitempty"`
	Truncated  int            `json:"truncated,omitempty"`
	Error      string         `json:"error,omitempty"`
	Agent      string         `json:"agent,omitempty"`
	// Azure's view
	AzureKind     string `json:"azure_kind,omitempty"` // vm or vmss
	Location      string `json:"location,omitempty"`
	ImageRef      string `json:"image_reference,omitempty"`
	ImageResolved string `json:"image_resolved,omitempty"` // how the reference was mapped
}

func parseState(raw json.RawMessage) HostState {
	var st HostState
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &st)
	}
	return st
}
