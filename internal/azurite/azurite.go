// Package azurite finds and starts the Azurite blob service (the Azure
// Storage emulator, an npm package) as a process on loopback, for tests,
// benchmarks, the demo and `imgpipe emulator --start-azurite`.
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
	"strings"
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

// PinnedVersion is the Azurite release imgpipe is tested with (package.json
// pins the same); `npm exec` runs exactly this one.
const PinnedVersion = "3.37.0"

// EnvVar names the variable that points at an azurite-blob executable.
const EnvVar = "IMGPIPE_AZURITE"

// Command is how to run azurite-blob: Path with Args before Azurite's own.
type Command struct {
	Path string
	Args []string
	// Source says where it was found: "$IMGPIPE_AZURITE", "PATH",
	// "node_modules" or "npm exec".
	Source string
}

func (c Command) String() string {
	return strings.Join(append([]string{c.Path}, c.Args...), " ")
}

// InstallHint says how to get Azurite.
var InstallHint = fmt.Sprintf("install Azurite with `npm install -g azurite@%s` (needs Node.js), or point %s at an azurite-blob executable, "+
	"or start Azurite yourself (azurite-blob --inMemoryPersistence --skipApiVersionCheck --loose) and pass --azurite-blob http://127.0.0.1:10000/devstoreaccount1", PinnedVersion, EnvVar)

// FindLocal looks for an installed azurite-blob, in this order:
// $IMGPIPE_AZURITE, PATH, then node_modules/.bin of the working directory
// or one above it (a repository or project that ran `npm ci`).
func FindLocal() (Command, error) {
	if p := os.Getenv(EnvVar); p != "" {
		st, err := os.Stat(p)
		if err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return Command{}, fmt.Errorf("%s=%s is not an executable azurite-blob: point it at node_modules/.bin/azurite-blob or a global install's azurite-blob", EnvVar, p)
		}
		return Command{Path: p, Source: "$" + EnvVar}, needNode()
	}
	if p, err := exec.LookPath("azurite-blob"); err == nil {
		return Command{Path: p, Source: "PATH"}, needNode()
	}
	if dir, err := os.Getwd(); err == nil {
		for {
			p := filepath.Join(dir, "node_modules", ".bin", "azurite-blob")
			if _, err := os.Stat(p); err == nil {
				return Command{Path: p, Source: "node_modules"}, needNode()
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return Command{}, errors.New("azurite-blob not found (not in $" + EnvVar + ", PATH or node_modules): " + InstallHint)
}

func needNode() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed (azurite-blob runs on Node.js): install Node.js, or start Azurite elsewhere and pass --azurite-blob")
	}
	return nil
}

// Find is FindLocal, and when nothing is installed but npm is, an
// `npm exec` of the pinned Azurite (npm fetches it into its cache once).
func Find() (Command, error) {
	c, err := FindLocal()
	if err == nil {
		return c, nil
	}
	if os.Getenv(EnvVar) != "" {
		return c, err // a wrong $IMGPIPE_AZURITE is an error, not a reason to download
	}
	npm, nerr := exec.LookPath("npm")
	if nerr != nil {
		return Command{}, err
	}
	return Command{Path: npm, Args: []string{"exec", "--yes", "--package=azurite@" + PinnedVersion, "--", "azurite-blob"}, Source: "npm exec"}, nil
}

// Binary returns the path of a locally installed azurite-blob (FindLocal),
// or an error saying how to install it.
func Binary() (string, error) {
	c, err := FindLocal()
	if err != nil {
		return "", err
	}
	return c.Path, nil
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

// Start starts a locally installed azurite-blob (FindLocal) on a free
// loopback port with in-memory persistence and waits until it accepts
// connections; stop must be called to end it.
func Start() (a *Instance, stop func(), err error) {
	c, err := FindLocal()
	if err != nil {
		return nil, nil, err
	}
	return StartCommand(c, Options{})
}

// Options tune StartCommand.
type Options struct {
	// Port to listen on (127.0.0.1); 0 picks a free one.
	Port int
	// CheckAPIVersion keeps Azurite's refusal of storage service versions
	// newer than it knows. Off by default: the Azure SDK for Go sends a
	// newer version than the latest Azurite supports, so imgpipe starts
	// Azurite with --skipApiVersionCheck (and --loose) unless this is set.
	CheckAPIVersion bool
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

// StartCommand starts Azurite as c says (see Find) on a free loopback port,
// in memory, and waits until it listens (longer for `npm exec`, which may
// first fetch the package).
func StartCommand(c Command, o Options) (*Instance, func(), error) {
	port := o.Port
	if port == 0 {
		p, err := FreePort()
		if err != nil {
			return nil, nil, err
		}
		port = p
	} else {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			return nil, nil, fmt.Errorf("port %d on 127.0.0.1 is taken (another Azurite?): stop what listens there or pick another port: %w", port, err)
		}
		l.Close()
	}
	work, err := os.MkdirTemp("", "imgpipe-azurite-*")
	if err != nil {
		return nil, nil, err
	}
	args := append(append([]string{}, c.Args...),
		"--inMemoryPersistence",
		"--blobHost", "127.0.0.1",
		"--blobPort", strconv.Itoa(port),
		"--silent",
		"--disableTelemetry",
	)
	if !o.CheckAPIVersion {
		args = append(args, "--skipApiVersionCheck", "--loose")
	}
	cmd := exec.Command(c.Path, args...)
	cmd.Dir = work
	out := &lockedBuffer{}
	cmd.Stdout = out
	cmd.Stderr = out
	newProcessGroup(cmd)
	if err := cmd.Start(); err != nil {
		os.RemoveAll(work)
		return nil, nil, fmt.Errorf("start %s: %w", c, err)
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
	wait := 60 * time.Second // node starts slowly on a loaded machine
	if c.Source == "npm exec" {
		wait = 3 * time.Minute
	}
	deadline := time.Now().Add(wait)
	for {
		conn, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			stop()
			return nil, nil, fmt.Errorf("%s exited before listening (%v): %s", c, err, out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			stop()
			return nil, nil, fmt.Errorf("%s did not listen on %s within %s: %s", c, addr, wait, out.String())
		}
	}
	return &Instance{
		BlobEndpoint: fmt.Sprintf("http://%s/%s", addr, AccountName),
		AccountName:  AccountName,
		AccountKey:   AccountKey,
		Port:         port,
	}, stop, nil
}
