package azemu

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/azurite"
)

// What a running local emulator writes to emulator.env and clients read
// back from the environment (`source emulator.env`).
const (
	EnvARMEndpoint    = "IMGPIPE_ARM_ENDPOINT"
	EnvBlobEndpoint   = "IMGPIPE_BLOB_ENDPOINT" // the emulator's Azurite blob endpoint
	EnvStorageAccount = "AZURE_STORAGE_ACCOUNT" // as az reads it
	EnvStorageKey     = "AZURE_STORAGE_KEY"
)

// SubscriptionID is the subscription the emulator suggests; it accepts any
// well-formed subscription id.
const SubscriptionID = "11111111-2222-4333-8444-555555555555"

// LocalOptions is a local emulator as `imgpipe emulator` runs it: the ARM
// emulator on Listen and, with StartAzurite, an Azurite it starts for blobs
// (or the one named in Options.Storage).
type LocalOptions struct {
	Options
	Listen string
	// StateDir keeps the state (JSON), the TLS certificate and emulator.env;
	// "" keeps state in memory and the files in a temporary directory that
	// Close removes.
	StateDir     string
	StartAzurite bool
	AzuritePort  int // 0: a free port
	// Notice is told what the caller should know while starting: a
	// warning about listening off loopback (before listening), Azurite run
	// through npm exec (which fetches it the first time).
	Notice func(string)
}

// Env is what a client needs to talk to a running local emulator.
type Env struct {
	Endpoint       string `json:"endpoint"`
	AuthorityHost  string `json:"authorityHost"`
	CACertPath     string `json:"caCertPath"`
	TenantID       string `json:"tenantId"`
	ClientID       string `json:"clientId"`
	ClientSecret   string `json:"clientSecret"`
	ObjectID       string `json:"objectId"`
	SubscriptionID string `json:"subscriptionId"`
	BlobEndpoint   string `json:"blobEndpoint,omitempty"`
	StorageAccount string `json:"storageAccount,omitempty"`
	// StorageAccountID is the Microsoft.Storage/storageAccounts resource the
	// blob service belongs to (its resource group goes in storage.resource_group).
	StorageAccountID string `json:"storageAccountId,omitempty"`
	RBACDelay        string `json:"rbacDelay"`
	storageKey       string // written only to the 0600 env file, never printed
	StateDir         string `json:"stateDir,omitempty"`
	EnvFile          string `json:"envFile"`
	// Warnings: listening off loopback.
	Warnings []string `json:"warnings,omitempty"`
}

// ShellLines are the exports of emulator.env.
func (e Env) ShellLines() string {
	s := fmt.Sprintf("export AZURE_TENANT_ID=%s\nexport AZURE_CLIENT_ID=%s\nexport AZURE_CLIENT_SECRET=%s\nexport AZURE_SUBSCRIPTION_ID=%s\n"+
		"export AZURE_AUTHORITY_HOST=%s\nexport %s=%s\nexport SSL_CERT_FILE=%s\n",
		e.TenantID, e.ClientID, e.ClientSecret, e.SubscriptionID, e.AuthorityHost, EnvARMEndpoint, e.Endpoint, e.CACertPath)
	if e.BlobEndpoint != "" {
		// the Azurite account the emulator's disks and images use, so
		// pipeline files and `imgpipe upload` reach the same blobs
		s += fmt.Sprintf("export %s=%s\nexport %s=%s\nexport %s=%s\n",
			EnvBlobEndpoint, e.BlobEndpoint, EnvStorageAccount, e.StorageAccount, EnvStorageKey, e.storageKey)
	}
	return s
}

// Local is a running local emulator.
type Local struct {
	Server *Server
	Env    Env
	close  []func()
}

// Close stops the emulator (and the Azurite it started) and removes a
// temporary state directory.
func (l *Local) Close() {
	for i := len(l.close) - 1; i >= 0; i-- {
		l.close[i]()
	}
	l.close = nil
}

// StartLocal starts the emulator o describes and writes emulator.env (0600)
// and, for in-memory state, the CA certificate. On error nothing is left
// running.
func StartLocal(o LocalOptions) (_ *Local, err error) {
	l := &Local{}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	dir := o.StateDir
	if dir == "" {
		d, err := os.MkdirTemp("", "imgpipe-emulator-*")
		if err != nil {
			return nil, err
		}
		l.close = append(l.close, func() { os.RemoveAll(d) })
		dir, o.Options.StateDir = d, ""
	} else {
		if dir, err = filepath.Abs(dir); err != nil {
			return nil, err
		}
		o.Options.StateDir = dir
	}
	if o.AzuritePort != 0 && !o.StartAzurite {
		return nil, errors.New("--azurite-port needs --start-azurite (with your own Azurite, pass --azurite-blob)")
	}
	if o.StartAzurite {
		if o.Storage.BlobEndpoint != "" {
			return nil, errors.New("use either --start-azurite or --azurite-blob, not both")
		}
		found, err := azurite.Find()
		if err != nil {
			return nil, fmt.Errorf("--start-azurite: %w", err)
		}
		if found.Source == "npm exec" && o.Notice != nil {
			o.Notice(fmt.Sprintf("Azurite is not installed: running %s (npm fetches it the first time; install it with npm install -g azurite@%s)", found, azurite.PinnedVersion))
		}
		az, stop, err := azurite.StartCommand(found, azurite.Options{Port: o.AzuritePort})
		if err != nil {
			return nil, fmt.Errorf("start Azurite (%s): %w; %s", found.Source, err, azurite.InstallHint)
		}
		l.close = append(l.close, stop)
		o.Storage = Storage{BlobEndpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}
	}
	warnings := ListenWarnings(o.Listen, o.ClientSecret)
	for _, w := range warnings {
		if o.Notice != nil {
			o.Notice("WARNING: " + w) // before listening
		}
	}
	srv, err := New(o.Options)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(o.Listen); err != nil {
		return nil, fmt.Errorf("%w (is another emulator running? pick another --listen port)", err)
	}
	l.Server = srv
	l.close = append(l.close, func() { srv.Close() })
	eff := srv.Options()
	l.Env = Env{
		Endpoint: srv.URL(), AuthorityHost: srv.URL() + "/", CACertPath: filepath.Join(dir, "ca-cert.pem"),
		TenantID: eff.TenantID, ClientID: eff.ClientID, ClientSecret: eff.ClientSecret, ObjectID: eff.ObjectID,
		SubscriptionID: SubscriptionID, BlobEndpoint: o.Storage.BlobEndpoint, StorageAccount: o.Storage.AccountName,
		RBACDelay: max(0, eff.RBACDelay).String(), storageKey: o.Storage.AccountKey, StateDir: o.Options.StateDir,
		EnvFile: filepath.Join(dir, "emulator.env"), Warnings: warnings,
	}
	if o.Storage.BlobEndpoint != "" {
		l.Env.StorageAccountID = srv.StorageAccountID()
	}
	if o.Options.StateDir == "" {
		// in memory: the certificate still goes to a file clients can read
		if err := atomicfile.WriteFile(l.Env.CACertPath, srv.CACertPEM(), 0o644); err != nil {
			return nil, err
		}
	}
	if err := atomicfile.WriteFile(l.Env.EnvFile, []byte(l.Env.ShellLines()), 0o600); err != nil {
		return nil, err
	}
	return l, nil
}

// ListenWarnings says why listening on addr is dangerous: anything but
// loopback exposes the emulator (whose client secret and Azurite key are
// well known, and which creates whatever it is asked to) to the network.
func ListenWarnings(addr, clientSecret string) []string {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil // the listener reports the bad address
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
		return nil
	}
	what := host
	if host == "" || host == "0.0.0.0" || host == "::" {
		what = "every network interface"
	}
	w := fmt.Sprintf("the emulator listens on %s (%s), not on loopback: anyone who can reach this machine can use it", addr, what)
	if clientSecret == "" || clientSecret == DefaultClientSecret {
		w += " with its well-known client secret (--client-secret)"
	}
	return []string{w + ". It is a test tool, not a service: use --listen 127.0.0.1:PORT unless you mean this."}
}
