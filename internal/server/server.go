// Package server is imgpipe's fleet server: the HTTP API and agent intake,
// a server-rendered dashboard, Prometheus metrics, and the pull of Azure's
// view of the fleet (VMs and scale sets and the gallery versions they run).
// Everything it shows comes from the catalog; it keeps only counters
// itself, so replicas on one PostgreSQL catalog answer alike, and the
// periodic work (snapshots, pruning, the Azure pull) is claimed in the
// catalog by one replica at a time.
package server

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net/http"
	"os"
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
	// JobTick is how often Run looks for periodic work (default 30s, or
	// half the AzureInterval when that is shorter than a minute).
	JobTick time.Duration
	// Replica names this server in job claims (default host:pid:random).
	Replica string
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// Auth says who may read (auth.go); the zero value is open.
	Auth AuthConfig
}

// Server serves the API, the dashboard and the metrics.
type Server struct {
	cfg Config
	mux *http.ServeMux

	metrics *serverMetrics

	// intake bounds the reports being handled at once; beyond it agents
	// get 503 with Retry-After and come back later
	intake chan struct{}
	// readers bounds the bodies being received at once (before a slot)
	readers chan struct{}
	// queue commits reports in batches (group commit)
	queue *reportQueue
	// readSlots bounds the reads served at once, readBudget their share of
	// the time while agents report (readslots.go)
	readSlots  chan struct{}
	readBudget *readBudget

	pullMu   sync.Mutex // one Azure pull at a time in this process
	lastPull atomic.Pointer[PullResult]

	oidc *oidcAuth // people's sign-in, when configured

	series seriesCache // fleet snapshots read for charts (charts.go)
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

// PostgresWriters is the number of batches committing at once on
// PostgreSQL (each on its own connection of the pool of 20).
const PostgresWriters = 4

// MaxConcurrentReports bounds the agent reports handled at once (most of
// them wait for their batch's commit, which is cheap).
const MaxConcurrentReports = 256

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
	if cfg.JobTick <= 0 {
		cfg.JobTick = 30 * time.Second
		// an Azure interval shorter than two ticks would not be kept
		if cfg.Azure != nil && cfg.AzureInterval < 2*cfg.JobTick {
			cfg.JobTick = max(cfg.AzureInterval/2, time.Second)
		}
	}
	if cfg.Replica == "" {
		cfg.Replica = replicaName()
	}
	s := &Server{cfg: cfg, mux: http.NewServeMux(),
		intake: make(chan struct{}, MaxConcurrentReports), readers: make(chan struct{}, MaxBodyReaders)}
	if err := s.setupAuth(); err != nil {
		return nil, err
	}
	s.metrics = newServerMetrics(s)
	// SQLite has one writer at a time; on PostgreSQL batches commit side
	// by side (their host rows are locked in name order: no deadlock), so
	// a batch's round trips overlap with the others'
	backend, writers := cfg.Catalog.Backend(), 1
	if backend == "postgres" {
		writers = PostgresWriters
	}
	s.readSlots, s.readBudget = make(chan struct{}, ReadSlots(backend)), newReadBudget(ReadShare(backend), ReadBurst)
	s.queue = newReportQueue(cfg.Catalog, writers, func(n int, d time.Duration, err error) {
		if err == nil {
			s.metrics.batchReports.Observe(float64(n))
			s.metrics.commit.Observe(d.Seconds())
		}
	})
	s.routes()
	return s, nil
}

// Close stops the intake's writers (after ListenAndServe returned, or in
// tests). Reports still waiting are refused; their agents retry.
func (s *Server) Close() { s.queue.close() }

func replicaName() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s:%d:%s", host, os.Getpid(), hex.EncodeToString(b))
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler {
	return securityHeaders(s.limitReads(s.authenticate(s.mux)))
}

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
	m.Handle("GET /metrics", s.metrics.handler())
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

// Names of the periodic jobs replicas share through the catalog.
const (
	jobAzurePull = "azure-pull"
	jobPrune     = "fleet-history-prune"
)

// Run does the fleet's periodic work until ctx ends, shared with any other
// replica through the catalog: a snapshot of the fleet's counts every
// catalog.SnapshotEvery (one per instant, whoever writes it), the history
// pruned hourly and the Azure pull (when configured) every AzureInterval,
// each run by the one replica that claims it. Failures are logged, never
// fatal.
func (s *Server) Run(ctx context.Context) {
	for {
		s.periodic(ctx)
		// jittered, so replicas started together do not tick together
		d := s.cfg.JobTick/2 + time.Duration(mrand.Int64N(int64(s.cfg.JobTick)))
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

func (s *Server) periodic(ctx context.Context) {
	cat := s.cfg.Catalog
	if err := cat.SnapshotFleet(ctx, s.cfg.Now()); err != nil && ctx.Err() == nil {
		slog.Warn("fleet snapshot failed", "err", err)
	}
	if ok, err := cat.ClaimJob(ctx, jobPrune, s.cfg.Replica, time.Hour, 10*time.Minute); err != nil && ctx.Err() == nil {
		slog.Warn("claim the history prune", "err", err)
	} else if ok {
		if _, err := cat.PruneFleetHistory(ctx, s.cfg.Now()); err != nil {
			slog.Warn("prune the fleet history", "err", err)
			_ = cat.ReleaseJob(context.WithoutCancel(ctx), jobPrune, s.cfg.Replica)
		} else {
			_ = cat.FinishJob(context.WithoutCancel(ctx), jobPrune, s.cfg.Replica)
		}
	}
	if s.cfg.Azure == nil {
		return
	}
	if _, err := s.pullAzure(ctx, s.cfg.AzureInterval); err != nil && !errors.Is(err, errPullClaimed) && ctx.Err() == nil {
		slog.Warn("azure pull failed", "err", err)
	}
}

// pullLease is how long a replica's claim on the Azure pull lasts without
// renewal (catalog.HoldJob renews it every third of that while it pulls).
const pullLease = time.Minute

// errPullClaimed: another replica runs the Azure pull, or ran it recently.
var errPullClaimed = errors.New("another replica is pulling Azure now")

// PullAzure runs one Azure pull now, unless another replica is running one.
func (s *Server) PullAzure(ctx context.Context) (*PullResult, error) { return s.pullAzure(ctx, 0) }

// pullAzure pulls Azure when no replica is pulling and none finished a
// pull in the last every.
func (s *Server) pullAzure(ctx context.Context, every time.Duration) (*PullResult, error) {
	if s.cfg.Azure == nil {
		return nil, errors.New("no Azure subscriptions configured: start serve with --azure-subscription")
	}
	s.pullMu.Lock()
	defer s.pullMu.Unlock()
	cat := s.cfg.Catalog
	ok, err := cat.ClaimJob(ctx, jobAzurePull, s.cfg.Replica, every, pullLease)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errPullClaimed
	}
	// a short claim kept alive while the pull runs: a replica killed
	// mid-pull holds the pull up for pullLease, not for a whole interval
	held, stop := cat.HoldJob(ctx, jobAzurePull, s.cfg.Replica, pullLease)
	defer stop()
	s.metrics.pulls.Inc()
	res, err := s.cfg.Azure.Pull(held, cat)
	if cause := context.Cause(held); err != nil && errors.Is(cause, catalog.ErrJobLost) {
		err = fmt.Errorf("azure pull stopped: %w", cause)
	}
	if err != nil {
		s.metrics.pullErrors.Inc()
		_ = cat.ReleaseJob(context.WithoutCancel(ctx), jobAzurePull, s.cfg.Replica)
		return res, err
	}
	s.lastPull.Store(res)
	if err := cat.FinishJob(context.WithoutCancel(ctx), jobAzurePull, s.cfg.Replica); err != nil {
		return res, err
	}
	return res, nil
}

// ---- helpers ------------------------------------------------------------------

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	// compact: indenting it was a sixth of an API read's CPU (100k hosts)
	_ = json.NewEncoder(w).Encode(v)
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
	s.metrics.rejected.WithLabelValues(reason).Inc()
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
