// Package azurite starts the Azurite blob service (the Azure Storage
// emulator installed from package.json) as a process on loopback, for tests,
// benchmarks and the demo.
package azurite

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// Well-known Azurite development storage account (documented by Microsoft for
// the storage emulators; not a secret).
const (
	AccountName = "devstoreaccount1"
	AccountKey  = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

// Instance is a running Azurite blob service on loopback, with in-memory
// persistence.
type Instance struct {
	BlobEndpoint string // http://127.0.0.1:PORT/devstoreaccount1
	AccountName  string
	AccountKey   string
	Port         int
}

// ConnectionString returns the storage connection string for the account.
func (a *Instance) ConnectionString() string {
	return fmt.Sprintf("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;BlobEndpoint=%s;",
		a.AccountName, a.AccountKey, a.BlobEndpoint)
}

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("go.mod not found above the working directory")
		}
		dir = parent
	}
}

// Binary returns the path of node_modules/.bin/azurite-blob in the
// repository root (installed by `npm ci`), or an error saying what to run.
func Binary() (string, error) {
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "node_modules", ".bin", "azurite-blob")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("azurite-blob not found at %s: run `npm ci` in %s", p, root)
	}
	if _, err := exec.LookPath("node"); err != nil {
		return "", errors.New("node is not installed (needed by azurite-blob)")
	}
	return p, nil
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts azurite-blob on a free loopback port with in-memory persistence
// and waits until it accepts connections; stop must be called to end it.
func Start() (a *Instance, stop func(), err error) {
	bin, err := Binary()
	if err != nil {
		return nil, nil, err
	}
	return startAzurite(bin)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.b.Len() > 64<<10 {
		return len(p), nil
	}
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startAzurite(bin string) (*Instance, func(), error) {
	port, err := FreePort()
	if err != nil {
		return nil, nil, err
	}
	work, err := os.MkdirTemp("", "imgpipe-azurite-*")
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(bin,
		"--inMemoryPersistence",
		"--blobHost", "127.0.0.1",
		"--blobPort", strconv.Itoa(port),
		"--skipApiVersionCheck",
		"--loose",
		"--silent",
		"--disableTelemetry",
	)
	cmd.Dir = work
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	newProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(work)
		return nil, nil, fmt.Errorf("start %s: %w", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			terminateGroup(cmd)
			select {
			case <-exited:
			case <-time.After(5 * time.Second):
				killGroup(cmd)
				<-exited
			}
			os.RemoveAll(work)
		})
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			return nil, nil, fmt.Errorf("azurite-blob exited before listening (%v): %s", err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("azurite-blob did not listen on %s within 30s: %s", addr, out.String())
		}
	}
	return &Instance{
		BlobEndpoint: fmt.Sprintf("http://%s/%s", addr, AccountName),
		AccountName:  AccountName,
		AccountKey:   AccountKey,
		Port:         port,
	}, stop, nil
}
