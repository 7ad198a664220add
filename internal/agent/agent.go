package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
)

// ReportsPath is where the server takes reports.
const ReportsPath = "/api/reports"

// Options configure an agent.
type Options struct {
	// Server is the base URL of imgpipe serve (https://host:port).
	Server string
	// Token is the fleet token: the agent presents it once, to enrol, and
	// receives a credential bound to its host name for its reports.
	Token string
	// Credential is this host's credential (from an earlier enrolment);
	// CredentialFile is where it is kept (read when present, written with
	// mode 0600 after enrolling). With neither, the agent enrols on its
	// first report and keeps the credential in memory.
	Credential     string
	CredentialFile string
	// HTTPClient sends the reports; nil means a client with a 30s timeout.
	HTTPClient *http.Client
	// Root is the tree to check ("/" on a running system).
	Root string
	// Baseline overrides the baseline file (default: the one inside Root).
	Baseline string
	// Host is the name reported; empty means os.Hostname.
	Host string
	// Platform is onprem, azure, or empty to detect (see DetectPlatform).
	Platform string
	// Region is the site or region reported (empty: none; for an Azure VM
	// the server keeps the location its Azure pull found).
	Region string
	// Ignore adds globs of expected churn to the baseline's excludes.
	Ignore []string
	// Workers bounds the check's parallelism (0: number of CPUs).
	Workers int
	// MaxChanges bounds the findings listed (0: MaxChanges).
	MaxChanges int
	// Attempts bounds the tries of one send (0: 5); waits double from
	// RetryBase (0: 1s) up to RetryMax (0: 30s), jittered by ±20%. A
	// server's Retry-After overrides them as a floor (see Send).
	Attempts  int
	RetryBase time.Duration
	RetryMax  time.Duration
	// Version is the agent's own version, sent along.
	Version string
	// Splay delays Loop's first check by a random time in [0, Splay), so a
	// fleet started together (or back after an outage) does not report in
	// lockstep. Intervals are jittered over [0.8, 1.2) of Loop's interval,
	// retry waits as Send says.
	Splay time.Duration
}

// Agent checks a system and reports to a server.
type Agent struct {
	opts Options
	base *drift.Baseline

	credMu sync.Mutex
	cred   string
}

// New validates the options.
func New(opts Options) (*Agent, error) {
	if _, err := checkTransport(opts.Server); err != nil {
		return nil, err
	}
	if opts.Token == "" && opts.Credential == "" && !fileExists(opts.CredentialFile) {
		return nil, errors.New("no agent token: give --token-file (the fleet token serve was started with) to enrol this host")
	}
	if err := opts.machine(""); err != nil {
		return nil, err
	}
	if opts.Region != "" && !ValidRegion(opts.Region) {
		return nil, fmt.Errorf("region %q: use 1-64 letters, digits, '.', '-' or '_'", opts.Region)
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if opts.Attempts <= 0 {
		opts.Attempts = 5
	}
	if opts.RetryBase <= 0 {
		opts.RetryBase = time.Second
	}
	if opts.RetryMax <= 0 {
		opts.RetryMax = 30 * time.Second
	}
	return &Agent{opts: opts, cred: opts.Credential}, nil
}

// machine fills in and checks what names this machine in a report, for New
// and NewLocal: Root (default "/"), Host (default the host name; hostFallback,
// when set, stands for a machine without one) and Platform ("" or "auto":
// detected under Root).
func (o *Options) machine(hostFallback string) error {
	if o.Root == "" {
		o.Root = "/"
	}
	if o.Host == "" {
		h, err := os.Hostname()
		switch {
		case hostFallback != "" && (err != nil || h == "" || h == "(none)"):
			h = hostFallback
		case err != nil:
			return fmt.Errorf("host name: %w (give --name)", err)
		}
		o.Host = h
	}
	if !ValidHostName(o.Host) {
		return fmt.Errorf("host name %q cannot be reported: give --name with letters, digits, '.', '-' or '_'", o.Host)
	}
	switch o.Platform {
	case "", "auto":
		o.Platform = DetectPlatform(o.Root)
	case catalog.PlatformOnprem, catalog.PlatformAzure:
	default:
		return fmt.Errorf("platform %q: use auto, onprem or azure", o.Platform)
	}
	return nil
}

func fileExists(p string) bool {
	if p == "" {
		return false
	}
	_, err := os.Stat(p)
	return err == nil
}

// Check runs one drift check and returns the report to send. A missing
// identity or baseline gives a report whose Error says so (and the error).
func (a *Agent) Check(ctx context.Context, depth drift.Depth) (Report, error) {
	r, err := a.check(ctx, depth)
	r.Schema = Schema
	r.Host, r.Platform, r.Region, r.OS, r.Agent = a.opts.Host, a.opts.Platform, a.opts.Region, runtime.GOOS, a.opts.Version
	if r.CheckedAt.IsZero() {
		r.CheckedAt = time.Now().UTC()
	}
	if err != nil {
		r.Error = Cut(err.Error(), maxDetail)
		r.Changes, r.Drifted, r.Summary = nil, false, drift.Summary{}
	}
	return r, err
}

func (a *Agent) check(ctx context.Context, depth drift.Depth) (Report, error) {
	var r Report
	id, err := drift.ReadIdentity(a.opts.Root)
	if err != nil {
		return r, fmt.Errorf("read the image identity: %w", err)
	}
	r.Image, r.Version, r.BuildID = id.Image, id.Version, id.BuildID
	if a.base == nil {
		p := a.opts.Baseline
		if p == "" {
			if p, err = drift.BaselinePath(a.opts.Root); err != nil {
				return r, err
			}
		}
		b, err := drift.ReadBaselineFile(p)
		if err != nil {
			return r, fmt.Errorf("read the baseline: %w", err)
		}
		a.base = b
	}
	d, err := drift.Check(ctx, a.opts.Root, a.base, drift.CheckOptions{Depth: depth, Ignore: a.opts.Ignore, Workers: a.opts.Workers})
	if err != nil {
		return r, fmt.Errorf("drift check: %w", err)
	}
	if d.Identity == nil {
		d.Identity = id
	}
	out := FromDrift(d, a.opts.MaxChanges)
	// the identity file in the tree says what runs; the baseline's copy
	// could be older if someone replaced it
	out.Image, out.Version, out.BuildID = id.Image, id.Version, id.BuildID
	return out, nil
}

// Encode marshals a report, dropping listed changes until it fits in
// MaxReportBytes (the summary still counts them).
func Encode(r Report) ([]byte, error) {
	for {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, err
		}
		if len(b) <= MaxReportBytes {
			return b, nil
		}
		if len(r.Changes) == 0 {
			return nil, fmt.Errorf("report of %d bytes exceeds %d", len(b), MaxReportBytes)
		}
		n := len(r.Changes) / 2
		r.Truncated += len(r.Changes) - n
		r.Changes = r.Changes[:n]
	}
}

// PermanentError is a refusal by the server that retrying cannot fix.
type PermanentError struct {
	Status int
	Body   string
	Enrol  bool // refused the enrolment, not a report
}

func (e *PermanentError) Error() string {
	hint, what := "", "the report"
	switch {
	case e.Enrol && (e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden):
		hint = " (check --token-file: it must hold serve's fleet token)"
	case e.Enrol && e.Status == http.StatusConflict:
		hint = " (an operator revokes the old credential with imgpipe serve revoke-agent)"
	case e.Status == http.StatusUnauthorized:
		hint = " (this host's credential is not accepted: was it revoked? remove --credential-file to enrol again)"
	case e.Status == http.StatusForbidden:
		hint = " (the credential belongs to another host name: keep --name stable)"
	case e.Status == http.StatusRequestEntityTooLarge:
		hint = " (lower --max-changes)"
	}
	if e.Enrol {
		what = "the enrolment"
	}
	return fmt.Sprintf("server refused %s: %d %s: %s%s", what, e.Status, http.StatusText(e.Status), e.Body, hint)
}

// Send posts a report, retrying network errors, 408, 429 and 5xx with
// jittered exponential backoff up to Attempts tries. A Retry-After from the
// server is a floor: that wait is kept (even beyond RetryMax) and jitter
// only adds to it. Other 4xx answers are permanent (*PermanentError).
func (a *Agent) Send(ctx context.Context, r Report) error {
	body, err := Encode(r)
	if err != nil {
		return err
	}
	endpoint := strings.TrimRight(a.opts.Server, "/") + ReportsPath
	wait := a.opts.RetryBase
	var last error
	for attempt := 1; ; attempt++ {
		var retryAfter time.Duration
		cred, err := a.credential(ctx)
		if err == nil {
			retryAfter, err = a.post(ctx, endpoint, cred, body)
		}
		if err == nil {
			return nil
		}
		var perm *PermanentError
		if errors.As(err, &perm) || ctx.Err() != nil {
			return err
		}
		last = err
		if attempt >= a.opts.Attempts {
			return fmt.Errorf("report not delivered after %d attempts: %w", attempt, last)
		}
		d := retryDelay(min(wait, a.opts.RetryMax), retryAfter)
		slog.Debug("agent: report not delivered, retrying", "attempt", attempt, "wait", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("report not delivered: %w (last error: %v)", ctx.Err(), last)
		case <-t.C:
		}
		wait = min(wait*2, a.opts.RetryMax)
	}
}

func (a *Agent) post(ctx context.Context, endpoint, cred string, body []byte) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return 0, &PermanentError{Status: 0, Body: err.Error()}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+cred)
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 2048))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return 0, nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500:
		return parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), fmt.Errorf("server answered %d %s", resp.StatusCode, http.StatusText(resp.StatusCode))
	default:
		return 0, &PermanentError{Status: resp.StatusCode, Body: strings.TrimSpace(string(msg))}
	}
}

// parseRetryAfter reads a Retry-After header (seconds or an HTTP date);
// 0 when absent, malformed or already past.
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if s, err := strconv.ParseInt(h, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		// bounded so that the wait and its jitter cannot overflow
		return time.Duration(min(s, int64(math.MaxInt64/2/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// RunOnce checks at depth and sends the report. It returns the report and
// the first error (check or send).
func (a *Agent) RunOnce(ctx context.Context, depth drift.Depth) (Report, error) {
	r, checkErr := a.Check(ctx, depth)
	if err := a.Send(ctx, r); err != nil {
		return r, errors.Join(checkErr, err)
	}
	return r, checkErr
}

// Loop runs checks every interval until ctx ends: quick checks, and a full
// check first and then whenever fullEvery has passed since the last one
// (fullEvery <= 0: quick only after the first). onRun, when set, sees every
// outcome; failures do not stop the loop. The baseline is re-read on every
// full check (an image rebuilt in place brings a new one).
func (a *Agent) Loop(ctx context.Context, interval, fullEvery time.Duration, onRun func(Report, error)) error {
	if interval <= 0 {
		return errors.New("interval must be positive")
	}
	if a.opts.Splay > 0 {
		t := time.NewTimer(splay(a.opts.Splay))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	var lastFull time.Time
	for {
		depth := drift.Quick
		if lastFull.IsZero() || (fullEvery > 0 && time.Since(lastFull) >= fullEvery) {
			depth = drift.Full
			a.base = nil
		}
		r, err := a.RunOnce(ctx, depth)
		if depth == drift.Full && r.Error == "" {
			lastFull = time.Now()
		}
		if onRun != nil {
			onRun(r, err)
		}
		t := time.NewTimer(jitter(interval))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// jitter spreads a wait over [0.8d, 1.2d), so agents that failed or
// started together drift apart instead of retrying in lockstep.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	if d*2/5 == 0 {
		return d
	}
	return d*4/5 + rand.N(d*2/5)
}

// retryDelay is the wait before the next try: the backoff jittered over
// [0.8backoff, 1.2backoff), or, when the server sent a Retry-After, that
// wait plus up to 20% more (in [retryAfter, 1.2retryAfter)), never less:
// the server asked for at least that long.
func retryDelay(backoff, retryAfter time.Duration) time.Duration {
	if retryAfter <= 0 {
		return jitter(backoff)
	}
	if retryAfter/5 == 0 {
		return retryAfter
	}
	return retryAfter + rand.N(retryAfter/5)
}

// splay is Loop's first delay: uniform over [0, d).
func splay(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// AzureAssetTag is the DMI chassis asset tag Azure gives its VMs; Hyper-V
// guests on-premises have the same vendor and product strings but not it.
const AzureAssetTag = "7783-7084-3265-9085-8269-3286-77"

// DetectPlatform guesses where the system under root runs from DMI data
// (no network, no metadata service): azure when the chassis asset tag is
// Azure's, onprem otherwise (and on systems without /sys, e.g. Windows).
func DetectPlatform(root string) string {
	b, err := os.ReadFile(filepath.Join(root, "sys", "class", "dmi", "id", "chassis_asset_tag"))
	if err == nil && strings.TrimSpace(string(b)) == AzureAssetTag {
		return catalog.PlatformAzure
	}
	return catalog.PlatformOnprem
}
