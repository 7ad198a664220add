package server

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
	"imgpipe/internal/testenv"
)

// The replica processes of TestReplicasOnOnePostgres are this test binary
// started again with these variables: it serves the catalog and writes
// the address it listens on to a file, until killed.
const (
	envReplicaCatalog = "IMGPIPE_TEST_REPLICA_CATALOG"
	envReplicaAddr    = "IMGPIPE_TEST_REPLICA_ADDR_FILE"
)

func TestMain(m *testing.M) {
	if loc := os.Getenv(envReplicaCatalog); loc != "" {
		if err := serveReplica(loc, os.Getenv(envReplicaAddr)); err != nil {
			fmt.Fprintln(os.Stderr, "replica:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serveReplica(loc, addrFile string) error {
	ctx := context.Background()
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		return err
	}
	defer cat.Close()
	srv, err := New(Config{Catalog: cat, AgentToken: testToken})
	if err != nil {
		return err
	}
	return srv.ListenAndServe(ctx, ServeOptions{Listen: "127.0.0.1:0", OnListening: func(addr string) {
		tmp := addrFile + ".tmp"
		if os.WriteFile(tmp, []byte(addr), 0o600) == nil {
			_ = os.Rename(tmp, addrFile)
		}
	}})
}

type replica struct {
	cmd  *exec.Cmd
	base string
}

func startReplica(t *testing.T, loc string) *replica {
	t.Helper()
	addrFile := filepath.Join(t.TempDir(), "addr")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envReplicaCatalog+"="+loc, envReplicaAddr+"="+addrFile)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if b, err := os.ReadFile(addrFile); err == nil {
			return &replica{cmd: cmd, base: "http://" + string(b)}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("replica did not start listening within 60s")
	return nil
}

// TestReplicasOnOnePostgres: two `serve` replicas (processes) on one
// PostgreSQL catalog behind a round-robin proxy serve the same answers,
// and killing one (SIGKILL) while agents report loses no report either of
// them acknowledged.
func TestReplicasOnOnePostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	loc := pg.NewDatabase(t)
	ctx := context.Background()
	cat, err := catalog.Open(ctx, loc)
	must(t, err)
	defer cat.Close()
	seedCatalog(t, cat)
	reps := []*replica{startReplica(t, loc), startReplica(t, loc)}
	var served [2]atomic.Int64
	var rr atomic.Int64
	var dead atomic.Bool
	proxy := httptest.NewServer(&httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			i := int(rr.Add(1) % 2)
			if dead.Load() {
				i = 0
			}
			u, _ := url.Parse(reps[i].base)
			pr.SetURL(u)
			pr.Out.Header.Set("X-Replica", fmt.Sprint(i))
		},
		ErrorLog: log.New(io.Discard, "", 0), // the killed replica's refused connections
		ModifyResponse: func(r *http.Response) error {
			r.Header.Set("X-Replica", r.Request.Header.Get("X-Replica"))
			if r.StatusCode == http.StatusAccepted {
				var i int
				fmt.Sscan(r.Request.Header.Get("X-Replica"), &i)
				served[i].Add(1)
			}
			return nil
		},
	})
	defer proxy.Close()
	client := &http.Client{Timeout: 10 * time.Second}

	// agents enrol through the proxy (so on both replicas) and report
	const hosts = 40
	creds := map[string]string{}
	for i := 0; i < hosts; i++ {
		name := fmt.Sprintf("r-%02d", i)
		status, er := enrol(t, client, proxy.URL, testToken, name)
		if status != http.StatusCreated {
			t.Fatalf("enrol %s: %d", name, status)
		}
		creds[name] = er.Credential
	}
	// send returns the status and which replica answered
	send := func(host string, at time.Time, drifted bool) (int, string, error) {
		r := validReport(host)
		r.CheckedAt, r.Drifted = at, drifted
		if drifted {
			r.Summary.FilesChanged = 1
		}
		body, _ := agent.Encode(r)
		req, _ := http.NewRequest(http.MethodPost, proxy.URL+agent.ReportsPath, bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+creds[host])
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("X-Replica"), nil
	}
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < hosts; i++ {
		name := fmt.Sprintf("r-%02d", i)
		if st, _, err := send(name, t0, i%4 == 0); err != nil || st != http.StatusAccepted {
			t.Fatalf("first report of %s: %d %v", name, st, err)
		}
	}
	// the same answers from either replica: each path read from both,
	// its body passed through norm, then compared
	sameOnBoth := func(path string, norm func(string) string) string {
		t.Helper()
		var bodies [2]string
		for i, r := range reps {
			resp, err := client.Get(r.base + path)
			must(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("replica %d %s: %d %s", i, path, resp.StatusCode, b)
			}
			bodies[i] = norm(string(b))
		}
		if bodies[0] != bodies[1] {
			t.Errorf("%s differs between replicas:\n%s\n---\n%s", path, bodies[0], bodies[1])
		}
		return bodies[0]
	}
	for _, path := range []string{"/api/hosts", "/api/hosts?state=drifted", "/api/hosts/r-04", "/api/hosts?limit=5&after=ok:r-03", "/api/images/web/versions"} {
		sameOnBoth(path, func(b string) string { return b })
	}
	// the pages too, but for how long ago things happened (the clock
	// moves between the two requests)
	agoText := regexp.MustCompile(`[0-9][0-9hms.]* ago`)
	for _, path := range []string{"/", "/?state=drifted&image=web", "/hosts/r-04", "/images/web", "/images/web/versions/1.2.0"} {
		sameOnBoth(path, func(b string) string { return agoText.ReplaceAllString(b, "_ ago") })
	}
	// and the fleet's metrics (not this replica's own counters)
	fleet := sameOnBoth("/metrics", func(b string) string {
		var lines []string
		for _, l := range strings.Split(b, "\n") {
			if strings.HasPrefix(l, "imgpipe_hosts") {
				lines = append(lines, l)
			}
		}
		return strings.Join(lines, "\n")
	})
	if !strings.Contains(fleet, `state="drifted"`) {
		t.Errorf("no drifted hosts in the fleet metrics:\n%s", fleet)
	}

	// load: 8 agents, each reporting its hosts in turn with a newer
	// check time each time; replica 1 is killed in the middle. From the
	// kill on, the first half of the hosts report no more: their stored
	// report must be their last acknowledged one (or a later one replica 1
	// committed but could not answer), with no later report to hide a
	// loss.
	type ack struct {
		at      time.Time
		replica string
	}
	var mu sync.Mutex
	lastAccepted := map[string]ack{}
	sent := map[string]map[time.Time]bool{}
	frozenHost := func(host string) bool {
		var i int
		fmt.Sscanf(host, "r-%d", &i)
		return i < hosts/2
	}
	var frozen atomic.Bool
	var seq atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				host := fmt.Sprintf("r-%02d", w+8*(j%(hosts/8)))
				if frozen.Load() && frozenHost(host) {
					continue
				}
				at := t0.Add(time.Duration(seq.Add(1)) * time.Millisecond)
				mu.Lock()
				if sent[host] == nil {
					sent[host] = map[time.Time]bool{}
				}
				sent[host][at] = true
				mu.Unlock()
				st, by, err := send(host, at, j%3 == 0)
				if err == nil && st == http.StatusAccepted {
					mu.Lock()
					lastAccepted[host] = ack{at, by}
					mu.Unlock()
				}
			}
		}()
	}
	// until every host had a report acknowledged and replica 1 took its
	// share (bounded: a loaded machine is slow, not stuck)
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: not within 60s", what)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("load on both replicas", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(lastAccepted) == hosts && served[1].Load() >= 20
	})
	frozen.Store(true)
	beforeKill := served[1].Load()
	must(t, reps[1].cmd.Process.Signal(syscall.SIGKILL))
	_ = reps[1].cmd.Wait()
	dead.Store(true)
	afterKill := served[0].Load()
	waitFor("load after the kill", func() bool { return served[0].Load() >= afterKill+40 })
	close(stop)
	wg.Wait()
	if beforeKill == 0 || served[0].Load() == afterKill {
		t.Fatalf("the kill was not mid-load: replica 1 acknowledged %d before it, replica 0 %d after", beforeKill, served[0].Load()-afterKill)
	}
	t.Logf("acknowledged: replica 0 %d, replica 1 %d (killed with SIGKILL mid-load)", served[0].Load(), beforeKill)
	hs, err := cat.Hosts(ctx, catalog.HostFilter{})
	must(t, err)
	stored := map[string]time.Time{}
	for _, h := range hs {
		stored[h.Name] = parseState(h.DriftSummary).CheckedAt
	}
	byKilled := 0
	for host, a := range lastAccepted {
		got := stored[host]
		switch {
		case got.Before(a.at):
			t.Errorf("%s: acknowledged report of %s (by replica %s) lost: stored %s", host, a.at.Format(time.StampMilli), a.replica, got.Format(time.StampMilli))
		case !sent[host][got]:
			t.Errorf("%s: stored a report of %s that was never sent", host, got.Format(time.StampMilli))
		}
		if frozenHost(host) && a.replica == "1" {
			byKilled++
		}
	}
	if len(lastAccepted) != hosts {
		t.Errorf("%d hosts had reports acknowledged during the load, want %d", len(lastAccepted), hosts)
	}
	// the check above is only as good as the acknowledgements it holds
	// from the killed replica with nothing reported after them
	if byKilled == 0 {
		t.Errorf("no host that stopped reporting at the kill had its last report acknowledged by the killed replica")
	}
	t.Logf("%d of %d hosts stopped at the kill, their last report acknowledged by the killed replica", byKilled, hosts/2)
}
