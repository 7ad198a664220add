package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/atomicfile"
)

// EnrollPath is where an agent trades the fleet token for a credential
// bound to its host name.
const EnrollPath = "/api/enroll"

// CredentialPrefix starts every host credential the server issues, so a
// credential is told apart from a fleet token at a glance.
const CredentialPrefix = "imgpipe-host-"

// EnrollRequest is what an agent sends to EnrollPath (with the fleet
// token as its bearer token).
type EnrollRequest struct {
	Host string `json:"host"`
}

// EnrollResponse is the server's answer: the credential, shown once.
type EnrollResponse struct {
	Host       string `json:"host"`
	Credential string `json:"credential"`
}

// MaxEnrollBytes bounds an enrolment request body.
const MaxEnrollBytes = 1 << 10

// IsLoopbackURL reports whether u names a loopback host (127.0.0.0/8,
// ::1 or localhost), where plain http is acceptable.
func IsLoopbackURL(u *url.URL) bool {
	host := u.Hostname()
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// checkTransport refuses to send secrets over plain http off loopback.
func checkTransport(server string) (*url.URL, error) {
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("server %q: give the base URL of imgpipe serve, e.g. https://fleet.example:8443", server)
	}
	if _, _, err := net.SplitHostPort(u.Host); err != nil && !strings.Contains(err.Error(), "missing port") {
		return nil, fmt.Errorf("server %q: %w", server, err)
	}
	if u.Scheme == "http" && !IsLoopbackURL(u) {
		return nil, fmt.Errorf("server %s is plain http off loopback: the agent's token would cross the network in clear text; use https (serve --tls-cert/--tls-key)", u.Redacted())
	}
	return u, nil
}

// credential returns the host credential: the one given, the one in
// CredentialFile, or a new one from enrolling with the fleet token (then
// written to CredentialFile, mode 0600, when set).
func (a *Agent) credential(ctx context.Context) (string, error) {
	a.credMu.Lock()
	defer a.credMu.Unlock()
	if a.cred != "" {
		return a.cred, nil
	}
	if p := a.opts.CredentialFile; p != "" {
		b, err := os.ReadFile(p)
		if err == nil {
			if tok := strings.TrimSpace(string(b)); tok != "" {
				a.cred = tok
				return tok, nil
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("read the agent credential: %w", err)
		}
	}
	if a.opts.Token == "" {
		return "", errors.New("this host is not enrolled and no fleet token was given to enrol it: give --token-file")
	}
	cred, err := a.enroll(ctx)
	if err != nil {
		return "", err
	}
	if p := a.opts.CredentialFile; p != "" {
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return "", fmt.Errorf("store the agent credential: %w", err)
		}
		if err := atomicfile.WriteFile(p, []byte(cred+"\n"), 0o600); err != nil {
			return "", fmt.Errorf("store the agent credential (the server issued it; revoke it with imgpipe serve revoke-agent %s before retrying): %w", a.opts.Host, err)
		}
	}
	a.cred = cred
	return cred, nil
}

// enroll trades the fleet token for a host credential.
func (a *Agent) enroll(ctx context.Context) (string, error) {
	body, _ := json.Marshal(EnrollRequest{Host: a.opts.Host})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.opts.Server, "/")+EnrollPath, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.opts.Token)
	resp, err := a.opts.HTTPClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("enrol with %s: %w", a.opts.Server, err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout || resp.StatusCode >= 500 {
		return "", fmt.Errorf("enrol with %s: server answered %d %s", a.opts.Server, resp.StatusCode, http.StatusText(resp.StatusCode))
	}
	if resp.StatusCode != http.StatusCreated {
		return "", &PermanentError{Status: resp.StatusCode, Body: strings.TrimSpace(string(msg)), Enrol: true}
	}
	var er EnrollResponse
	if err := json.Unmarshal(msg, &er); err != nil || !strings.HasPrefix(er.Credential, CredentialPrefix) || er.Host != a.opts.Host {
		return "", fmt.Errorf("enrol with %s: unexpected answer", a.opts.Server)
	}
	return er.Credential, nil
}
