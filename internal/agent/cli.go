package agent

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"imgpipe/internal/drift"
)

// ReadToken picks a secret: the flag's value, else the file's content,
// else the environment variable env. With private set, a file that group
// or others may read is refused.
func ReadToken(flag, file, env string, private bool) (string, error) {
	if flag != "" {
		return flag, nil
	}
	if file == "" {
		return strings.TrimSpace(os.Getenv(env)), nil
	}
	if private {
		fi, err := os.Stat(file)
		if err != nil {
			return "", fmt.Errorf("read the token file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return "", fmt.Errorf("token file %s is readable by group or others (mode %04o): run chmod 600 %s", file, fi.Mode().Perm(), file)
		}
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("read the token file: %w", err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("token file %s is empty", file)
	}
	return tok, nil
}

// HTTPClient is the client an agent reports with: timeout per attempt, and
// the CA certificates of caFile (PEM) instead of the system's when given.
func HTTPClient(caFile string, timeout time.Duration) (*http.Client, error) {
	client := &http.Client{Timeout: timeout}
	if caFile == "" {
		return client, nil
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read the CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	client.Transport = tr
	return client, nil
}

// DefaultCredentialFile sets CredentialFile, when empty, to the agent's
// state directory under Root, and ignores that file in drift checks (the
// agent's own state is not drift).
func (o *Options) DefaultCredentialFile() {
	if o.CredentialFile != "" {
		return
	}
	rel := drift.StateDir(o.Root) + "/agent.credential"
	o.CredentialFile = filepath.Join(o.Root, filepath.FromSlash(rel))
	o.Ignore = append(o.Ignore, rel)
}

// BuildVersion is the version agents report: the VCS revision of this
// build when known.
func BuildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return "dev"
}

// Line is a one-line account of a report for a terminal: what the host
// runs, the verdict and counts, and whether it was sent.
func (r Report) Line(sent bool) string {
	verdict := "no drift"
	if r.Drifted {
		verdict = "DRIFTED"
	}
	delivery := "sent"
	if !sent {
		delivery = "NOT sent"
	}
	s := r.Summary
	return fmt.Sprintf("%s %s on %s (%s): %s: %d added, %d removed, %d changed files, %d package and %d service changes, %d problems (%s check); report %s",
		r.Image, r.Version, r.Host, r.Platform, verdict, s.FilesAdded, s.FilesRemoved, s.FilesChanged, s.Packages, s.Services, s.Problems, r.Depth, delivery)
}
