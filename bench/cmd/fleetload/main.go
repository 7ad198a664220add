// Command fleetload is a bounded load tool for imgpipe serve: simulated
// agents on loopback enrol once (the fleet token buys each a host
// credential) and then post reports as fast as a fixed number of workers
// can, for a fixed time. Optionally, meanwhile, readers fetch dashboard and
// API pages and slow senders (holders of a valid credential) dribble report
// bodies a byte at a time, the slow-body attack.
//
//	fleetload -server http://127.0.0.1:8080 -token-file t -hosts 2000 \
//	    -concurrency 8 -duration 10s [-slow 32] [-read /,/metrics -readers 2] \
//	    [-compare-slow 32] [-json]
//
// It refuses any server that is not on loopback, every loop is bounded by
// -duration (and each request by -timeout), and it exits by itself.
// Credentials are cached in -creds (default: none) so a second run against
// the same catalog does not enrol again.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"imgpipe/internal/agent"
)

type config struct {
	server, tokenFile, credsFile, prefix, image, version string
	hosts, concurrency, slow, readers, compareSlow       int
	duration, timeout, readEvery                         time.Duration
	reads                                                []string
	jsonOut                                              bool
	driftEvery                                           int
}

// Phase is the outcome of one timed run.
type Phase struct {
	Name          string             `json:"name"`
	Concurrency   int                `json:"concurrency"`
	Slow          int                `json:"slow_senders"`
	Readers       int                `json:"readers"`
	Seconds       float64            `json:"seconds"`
	Accepted      int64              `json:"accepted"`
	ReportsPerSec float64            `json:"reports_per_sec"`
	P50MS         float64            `json:"p50_ms"`
	P99MS         float64            `json:"p99_ms"`
	Statuses      map[string]int64   `json:"statuses"`
	ReadP95MS     map[string]float64 `json:"read_p95_ms,omitempty"`
	ReadCount     map[string]int     `json:"read_count,omitempty"`
	SlowCutOff    int64              `json:"slow_cut_off,omitempty"` // slow senders answered 408
}

func main() {
	var c config
	var reads string
	flag.StringVar(&c.server, "server", "", "base URL of imgpipe serve (loopback only)")
	flag.StringVar(&c.tokenFile, "token-file", "", "file holding serve's fleet token")
	flag.StringVar(&c.credsFile, "creds", "", "cache of host credentials (JSON); reused when present")
	flag.StringVar(&c.prefix, "prefix", "load", "simulated host names are PREFIX-NNNNNN")
	flag.StringVar(&c.image, "image", "web", "image the simulated hosts report")
	flag.StringVar(&c.version, "version", "1.0.0", "version the simulated hosts report")
	flag.IntVar(&c.hosts, "hosts", 1000, "simulated agents (each enrols once)")
	flag.IntVar(&c.concurrency, "concurrency", 8, "reports in flight at once")
	flag.IntVar(&c.slow, "slow", 0, "slow senders during the run (slow-body attack)")
	flag.IntVar(&c.compareSlow, "compare-slow", 0, "run twice, without and with this many slow senders, and print the ratio")
	flag.StringVar(&reads, "read", "", "comma-separated paths readers fetch during the run")
	flag.IntVar(&c.readers, "readers", 0, "concurrent readers (with -read)")
	flag.DurationVar(&c.readEvery, "read-every", 0, "each reader starts a read this often (0: back to back), like a person refreshing a page")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of a run (at most 5m)")
	flag.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of one request")
	flag.IntVar(&c.driftEvery, "drift-every", 7, "every Nth host reports drift")
	flag.BoolVar(&c.jsonOut, "json", false, "print JSON")
	flag.Parse()
	if reads != "" {
		c.reads = strings.Split(reads, ",")
	}
	if err := run(c); err != nil {
		fmt.Fprintln(os.Stderr, "fleetload:", err)
		os.Exit(1)
	}
}

func run(c config) error {
	u, err := url.Parse(c.server)
	if err != nil || u.Host == "" || !agent.IsLoopbackURL(u) {
		return fmt.Errorf("-server %q: give a loopback URL (this tool sends load only to this machine)", c.server)
	}
	if c.duration <= 0 || c.duration > 5*time.Minute {
		return errors.New("-duration must be in (0, 5m]")
	}
	if c.hosts <= 0 || c.concurrency <= 0 {
		return errors.New("-hosts and -concurrency must be positive")
	}
	tokB, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return fmt.Errorf("read -token-file: %w", err)
	}
	token := strings.TrimSpace(string(tokB))
	tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute,
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}} // loopback benchmark against a throwaway certificate
	client := &http.Client{Transport: tr, Timeout: c.timeout}
	creds, err := credentials(c, client, token)
	if err != nil {
		return err
	}
	var phases []Phase
	if c.compareSlow > 0 {
		base, err := phase(c, client, creds, "unloaded", 0)
		if err != nil {
			return err
		}
		att, err := phase(c, client, creds, fmt.Sprintf("%d slow senders", c.compareSlow), c.compareSlow)
		if err != nil {
			return err
		}
		phases = append(phases, base, att)
	} else {
		p, err := phase(c, client, creds, "run", c.slow)
		if err != nil {
			return err
		}
		phases = append(phases, p)
	}
	if c.jsonOut {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(phases)
	}
	for _, p := range phases {
		fmt.Printf("%-18s c=%-3d %8.0f reports/s  p50 %6.1f ms  p99 %6.1f ms  statuses %v", p.Name, p.Concurrency, p.ReportsPerSec, p.P50MS, p.P99MS, p.Statuses)
		if p.Slow > 0 {
			fmt.Printf("  slow senders cut off with 408: %d", p.SlowCutOff)
		}
		fmt.Println()
		for _, path := range sortedKeys(p.ReadP95MS) {
			fmt.Printf("    read %-28s p95 %7.1f ms (%d requests)\n", path, p.ReadP95MS[path], p.ReadCount[path])
		}
	}
	if len(phases) == 2 && phases[0].ReportsPerSec > 0 {
		fmt.Printf("honest intake under attack: %.1f%% of unloaded\n", 100*phases[1].ReportsPerSec/phases[0].ReportsPerSec)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// credentials enrols c.hosts hosts (or reads them from the cache).
func credentials(c config, client *http.Client, token string) (map[string]string, error) {
	creds := map[string]string{}
	if c.credsFile != "" {
		if b, err := os.ReadFile(c.credsFile); err == nil {
			if err := json.Unmarshal(b, &creds); err != nil {
				return nil, fmt.Errorf("read -creds: %w", err)
			}
		}
	}
	var names []string
	for i := 0; i < c.hosts; i++ {
		if n := fmt.Sprintf("%s-%06d", c.prefix, i); creds[n] == "" {
			names = append(names, n)
		}
	}
	var mu sync.Mutex
	var firstErr error
	work := make(chan string)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range work {
				cred, err := enrol(client, c.server, token, n)
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					creds[n] = cred
				}
				mu.Unlock()
			}
		}()
	}
	for _, n := range names {
		work <- n
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if c.credsFile != "" && len(names) > 0 {
		b, _ := json.Marshal(creds)
		if err := os.WriteFile(c.credsFile, b, 0o600); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

func enrol(client *http.Client, server, token, host string) (string, error) {
	body, _ := json.Marshal(agent.EnrollRequest{Host: host})
	req, _ := http.NewRequest(http.MethodPost, server+agent.EnrollPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("enrol %s: %d %s (a catalog with these hosts enrolled needs their -creds cache)", host, resp.StatusCode, bytes.TrimSpace(b))
	}
	var er agent.EnrollResponse
	if err := json.Unmarshal(b, &er); err != nil {
		return "", err
	}
	return er.Credential, nil
}

func reportBody(c config, host string, i int) []byte {
	r := agent.Report{Schema: agent.Schema, Host: host, Platform: "onprem", OS: "linux", Image: c.image, Version: c.version,
		Depth: "quick", CheckedAt: time.Now().UTC(), DurationMS: 12, Agent: "fleetload"}
	if c.driftEvery > 0 && i%c.driftEvery == 0 {
		r.Drifted, r.Summary.FilesChanged = true, 1
		r.Changes = []agent.Change{{Area: "file", Kind: "changed", Name: "etc/ssh/sshd_config", Detail: "content"}}
	}
	b, _ := json.Marshal(r)
	return b
}

func pct(ds []time.Duration, p float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	slices.Sort(ds)
	i := int(float64(len(ds)-1) * p)
	return float64(ds[i].Microseconds()) / 1000
}

func phase(c config, client *http.Client, creds map[string]string, name string, slow int) (Phase, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.duration)
	defer cancel()
	var hosts []string
	for i := 0; i < c.hosts; i++ {
		hosts = append(hosts, fmt.Sprintf("%s-%06d", c.prefix, i))
	}
	// slow senders first, so they hold whatever they can before the run
	var cutOff atomic.Int64
	var slowWG sync.WaitGroup
	for i := 0; i < slow; i++ {
		slowWG.Add(1)
		go func() {
			defer slowWG.Done()
			slowSender(ctx, c.server, creds[hosts[i%len(hosts)]], &cutOff)
		}()
	}
	if slow > 0 {
		time.Sleep(200 * time.Millisecond)
	}
	var next atomic.Int64
	var mu sync.Mutex
	var lat []time.Duration
	statuses := map[string]int64{}
	var accepted atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			local := map[string]int64{}
			for ctx.Err() == nil {
				i := int(next.Add(1))
				h := hosts[i%len(hosts)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, c.server+agent.ReportsPath, bytes.NewReader(reportBody(c, h, i%len(hosts))))
				req.Header.Set("Authorization", "Bearer "+creds[h])
				req.Header.Set("Content-Type", "application/json")
				t0 := time.Now()
				resp, err := client.Do(req)
				d := time.Since(t0)
				if err != nil {
					if ctx.Err() == nil {
						local["error"]++
					}
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				local[fmt.Sprint(resp.StatusCode)]++
				if resp.StatusCode == http.StatusAccepted {
					accepted.Add(1)
					mine = append(mine, d)
				}
			}
			mu.Lock()
			lat = append(lat, mine...)
			for k, v := range local {
				statuses[k] += v
			}
			mu.Unlock()
		}()
	}
	readLat := map[string][]time.Duration{}
	for r := 0; r < c.readers && len(c.reads) > 0; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := map[string][]time.Duration{}
			var tick <-chan time.Time
			if c.readEvery > 0 {
				tk := time.NewTicker(c.readEvery)
				defer tk.Stop()
				tick = tk.C
			}
			for i := r; ctx.Err() == nil; i++ {
				if tick != nil {
					select {
					case <-tick:
					case <-ctx.Done():
						continue
					}
				}
				path := c.reads[i%len(c.reads)]
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.server+path, nil)
				t0 := time.Now()
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					mine[path] = append(mine[path], time.Since(t0))
				}
			}
			mu.Lock()
			for k, v := range mine {
				readLat[k] = append(readLat[k], v...)
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	secs := time.Since(start).Seconds()
	cancel()
	slowWG.Wait()
	p := Phase{Name: name, Concurrency: c.concurrency, Slow: slow, Readers: c.readers, Seconds: secs, Accepted: accepted.Load(),
		ReportsPerSec: float64(accepted.Load()) / secs, P50MS: pct(lat, 0.50), P99MS: pct(lat, 0.99), Statuses: statuses, SlowCutOff: cutOff.Load()}
	if len(readLat) > 0 {
		p.ReadP95MS, p.ReadCount = map[string]float64{}, map[string]int{}
		for k, v := range readLat {
			p.ReadP95MS[k], p.ReadCount[k] = pct(v, 0.95), len(v)
		}
	}
	return p, nil
}

// slowSender opens connections one after another and dribbles a report's
// body into each, a byte every 100 ms, until ctx ends; answers of 408 (the
// server cut it off) are counted.
func slowSender(ctx context.Context, server, cred string, cutOff *atomic.Int64) {
	u, _ := url.Parse(server)
	addr := u.Host
	if u.Port() == "" {
		addr = net.JoinHostPort(u.Hostname(), map[string]string{"http": "80", "https": "443"}[u.Scheme])
	}
	for ctx.Err() == nil {
		var conn net.Conn
		var err error
		d := net.Dialer{Timeout: 5 * time.Second}
		if u.Scheme == "https" {
			conn, err = tls.DialWithDialer(&d, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
		} else {
			conn, err = d.DialContext(ctx, "tcp", addr)
		}
		if err != nil {
			return
		}
		stop := context.AfterFunc(ctx, func() { conn.Close() })
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 60000\r\n\r\n{", agent.ReportsPath, u.Host, cred)
		done := make(chan struct{})
		go func() {
			tk := time.NewTicker(100 * time.Millisecond)
			defer tk.Stop()
			for {
				select {
				case <-done:
					return
				case <-tk.C:
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
		close(done)
		if err == nil {
			if resp.StatusCode == http.StatusRequestTimeout {
				cutOff.Add(1)
			}
			resp.Body.Close()
		}
		stop()
		conn.Close()
	}
}
