package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/catalog"
)

// testEnrolment: the fleet token only enrols; a credential writes only its
// own host's record; a host enrols once; a revoked credential is refused.
func testEnrolment(t *testing.T, b backend) {
	f := newFixture(t, b, Config{})
	seedCatalog(t, f.cat)
	ctx := context.Background()
	credA := f.credFor(t, "web-a")
	credB := f.credFor(t, "web-b")
	if !strings.HasPrefix(credA, agent.CredentialPrefix) || credA == credB {
		t.Fatalf("credentials %q %q", credA, credB)
	}
	good, _ := json.Marshal(validReport("web-a"))
	if status, msg := post(t, f, credA, "application/json", good); status != http.StatusAccepted {
		t.Fatalf("own report: %d %s", status, msg)
	}
	// B tries to overwrite A's record with its own credential
	forged := validReport("web-a")
	forged.Version = "1.0.0"
	forged.Drifted, forged.Summary.FilesAdded = true, 1
	body, _ := json.Marshal(forged)
	before := f.srv.rejectedCount(RejectWrongHost)
	if status, msg := post(t, f, credB, "application/json", body); status != http.StatusForbidden || !strings.Contains(msg, "web-b") {
		t.Fatalf("forged report: %d %s", status, msg)
	}
	if f.srv.rejectedCount(RejectWrongHost) != before+1 {
		t.Error("wrong_host not counted")
	}
	// ... or to enrol again as A to get a credential for it
	if status, _ := enrol(t, f.ts.Client(), f.ts.URL, testToken, "web-a"); status != http.StatusConflict {
		t.Fatalf("second enrolment of web-a: %d, want 409", status)
	}
	// ... or to use the fleet token for a report
	req, _ := http.NewRequest(http.MethodPost, f.ts.URL+agent.ReportsPath, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := f.ts.Client().Do(req)
	must(t, err)
	msg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(msg), "only enrols") {
		t.Fatalf("report with the fleet token: %d %s", resp.StatusCode, msg)
	}
	hosts, err := f.cat.Hosts(ctx, catalog.HostFilter{})
	must(t, err)
	if len(hosts) != 1 || hosts[0].Name != "web-a" || hosts[0].Version != "1.2.0" || parseState(hosts[0].DriftSummary).Drifted {
		t.Fatalf("web-a's record was changed by another host: %+v", hosts)
	}
	// enrolment needs the fleet token, a host credential does not do
	for _, tok := range []string{"", "wrong-token", credA} {
		if status, _ := enrol(t, f.ts.Client(), f.ts.URL, tok, "web-new"); status != http.StatusUnauthorized {
			t.Errorf("enrol with %q: %d, want 401", tok, status)
		}
	}
	if status, _ := enrol(t, f.ts.Client(), f.ts.URL, testToken, "<bad>"); status != http.StatusBadRequest {
		t.Errorf("enrol a bad name: %d", status)
	}
	// a made-up credential is refused
	if status, _ := post(t, f, agent.CredentialPrefix+"made-up", "application/json", good); status != http.StatusUnauthorized {
		t.Errorf("made-up credential: %d", status)
	}
	// a revoked credential is refused; the host can enrol again
	must(t, f.cat.RevokeHostCredential(ctx, "web-a"))
	if status, _ := post(t, f, credA, "application/json", good); status != http.StatusUnauthorized {
		t.Errorf("revoked credential: %d", status)
	}
	if status, er := enrol(t, f.ts.Client(), f.ts.URL, testToken, "web-a"); status != http.StatusCreated || er.Credential == credA {
		t.Errorf("re-enrol after revoke: %d", status)
	}
}

// slowSender opens a connection and sends a report's headers and the
// start of its body, then a byte every interval, until stop is closed.
func slowSender(t testing.TB, addr string, tlsConf *tls.Config, cred string, every time.Duration, stop <-chan struct{}) (status chan int) {
	status = make(chan int, 1)
	go func() {
		conn, err := tls.Dial("tcp", addr, tlsConf)
		if err != nil {
			status <- -1
			return
		}
		defer conn.Close()
		fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 4000\r\n\r\n{", agent.ReportsPath, cred)
		go func() {
			tk := time.NewTicker(every)
			defer tk.Stop()
			for {
				select {
				case <-stop:
					return
				case <-tk.C:
					if _, err := conn.Write([]byte(" ")); err != nil {
						return
					}
				}
			}
		}()
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufioReader(conn), nil)
		if err != nil {
			status <- 0
			return
		}
		resp.Body.Close()
		status <- resp.StatusCode
	}()
	return status
}

// testSlowBody: 2*MaxConcurrentReports token holders sending slowly do not
// take intake slots from honest agents, and each is cut off at the body
// deadline with 408.
func testSlowBody(t *testing.T, b backend) {
	f := newFixture(t, b, Config{BodyTimeout: 1500 * time.Millisecond})
	seedCatalog(t, f.cat)
	attacker := f.credFor(t, "attacker")
	addr := f.ts.Listener.Addr().String()
	tlsConf := &tls.Config{InsecureSkipVerify: true} // the test server's own certificate
	stop := make(chan struct{})
	defer close(stop)
	var slow []chan int
	for i := 0; i < 2*MaxConcurrentReports; i++ {
		slow = append(slow, slowSender(t, addr, tlsConf, attacker, 100*time.Millisecond, stop))
	}
	time.Sleep(300 * time.Millisecond) // every slow body is being received
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	// 16 honest agents (fewer than the slots, so none is ever busy unless
	// the slow senders hold slots), 4 reports each
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body, _ := json.Marshal(validReport(fmt.Sprintf("honest-%02d", i)))
			for j := 0; j < 4; j++ {
				if status, msg := post(t, f, testToken, "application/json", body); status != http.StatusAccepted {
					errs <- fmt.Sprintf("%d %s", status, msg)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Errorf("honest report while slow bodies arrive: %s", e)
	}
	for _, ch := range slow {
		select {
		case st := <-ch:
			if st != http.StatusRequestTimeout {
				t.Errorf("slow sender got %d, want 408", st)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a slow sender was never cut off")
		}
	}
	if got := f.srv.rejectedCount(RejectSlowBody); got != int64(len(slow)) {
		t.Errorf("slow_body rejections %d, want %d", got, len(slow))
	}
}

func bufioReader(c net.Conn) *bufio.Reader { return bufio.NewReader(c) }
