// Package transfertest holds test helpers for uploads: a loopback reverse
// proxy in front of a storage endpoint that counts the page bytes that
// reached the service, can slow requests down, and can inject faults (429,
// 500, reset connections) for a seeded fraction of requests, bounded.
package transfertest

import (
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults configures fault injection.
type Faults struct {
	Seed uint64
	// Rate is the fraction of requests that fail (0..1).
	Rate float64
	// Max bounds the number of injected faults (the rest pass).
	Max int
	// OnlyPuts limits faults to Put Page requests.
	OnlyPuts bool
}

// Proxy is a reverse proxy on 127.0.0.1 in front of a storage endpoint.
type Proxy struct {
	URL string // same shape as the target endpoint, e.g. http://127.0.0.1:P/devstoreaccount1

	// PutPageBytes counts bytes of Put Page bodies the service acknowledged.
	PutPageBytes atomic.Int64
	// PutPages counts acknowledged Put Page requests.
	PutPages atomic.Int64
	// Faults counts injected faults by kind.
	Faults429, Faults500, FaultsReset atomic.Int64

	// Delay is added before forwarding each Put Page (nanoseconds).
	Delay atomic.Int64
	// Break makes every request fail with a reset connection.
	Break atomic.Bool
	// BreakAfterPuts sets Break once this many Put Page calls were
	// acknowledged (0: never).
	BreakAfterPuts atomic.Int64
	// Corrupt is the number of Put Page bodies still to damage in transit
	// (one byte flipped, headers untouched), as a faulty network path would.
	Corrupt atomic.Int64
	// PutPagesRefused counts Put Page requests the service answered 400.
	PutPagesRefused atomic.Int64

	mu     sync.Mutex
	rng    *rand.Rand
	faults Faults
	n      int
	srv    *httptest.Server
}

// Start starts a proxy in front of endpoint (a URL whose path, such as
// /devstoreaccount1, is kept) and stops it at the end of the test.
func Start(t testing.TB, endpoint string, f Faults) *Proxy {
	t.Helper()
	p, err := New(endpoint, f)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// New starts a proxy; call Close to stop it.
func New(endpoint string, f Faults) (*Proxy, error) {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil, err
	}
	p := &Proxy{rng: rand.New(rand.NewPCG(f.Seed, f.Seed^0x9e3779b97f4a7c15)), faults: f}
	origin := &url.URL{Scheme: u.Scheme, Host: u.Host}
	rp := httputil.NewSingleHostReverseProxy(origin)
	rp.ErrorLog = nil
	rp.Transport = &http.Transport{MaxIdleConnsPerHost: 64, ResponseHeaderTimeout: 2 * time.Minute}
	p.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		isPut := r.Method == http.MethodPut && strings.Contains(r.URL.RawQuery, "comp=page") &&
			strings.EqualFold(r.Header.Get("x-ms-page-write"), "update")
		kind := p.fault(isPut)
		if p.Break.Load() {
			kind = "reset"
		}
		if kind != "" {
			switch kind {
			case "429":
				p.Faults429.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Retry-After", "0")
				http.Error(w, "injected throttle", http.StatusTooManyRequests)
			case "500":
				p.Faults500.Add(1)
				_, _ = io.Copy(io.Discard, r.Body)
				http.Error(w, "injected failure", http.StatusInternalServerError)
			default:
				p.FaultsReset.Add(1)
				hj, ok := w.(http.Hijacker)
				if !ok {
					http.Error(w, "no hijack", http.StatusInternalServerError)
					return
				}
				c, _, err := hj.Hijack()
				if err == nil {
					if tc, ok := c.(*net.TCPConn); ok {
						_ = tc.SetLinger(0) // RST, not FIN
					}
					c.Close()
				}
			}
			return
		}
		if isPut {
			if d := p.Delay.Load(); d > 0 {
				time.Sleep(time.Duration(d))
			}
			if p.takeCorrupt() {
				body, err := io.ReadAll(r.Body)
				if err != nil {
					http.Error(w, err.Error(), http.StatusBadRequest)
					return
				}
				if len(body) > 0 {
					body[len(body)/2] ^= 0x5a
				}
				r.Body = io.NopCloser(bytes.NewReader(body))
			}
			rec := &statusRecorder{ResponseWriter: w}
			rp.ServeHTTP(rec, r)
			if rec.status == http.StatusBadRequest {
				p.PutPagesRefused.Add(1)
			}
			if rec.status/100 == 2 {
				p.PutPageBytes.Add(r.ContentLength)
				if n := p.PutPages.Add(1); n == p.BreakAfterPuts.Load() {
					p.Break.Store(true)
				}
			}
			return
		}
		rp.ServeHTTP(w, r)
	}))
	p.srv.Start()
	p.URL = p.srv.URL + u.Path
	return p, nil
}

func (p *Proxy) takeCorrupt() bool {
	for {
		n := p.Corrupt.Load()
		if n <= 0 {
			return false
		}
		if p.Corrupt.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (p *Proxy) fault(isPut bool) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.faults.Rate <= 0 || p.n >= p.faults.Max || (p.faults.OnlyPuts && !isPut) {
		return ""
	}
	if p.rng.Float64() >= p.faults.Rate {
		return ""
	}
	p.n++
	return []string{"429", "500", "reset"}[p.rng.IntN(3)]
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.CloseClientConnections(); p.srv.Close() }

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}
