package azure

// Connecting a Publisher as the environment says: the one place imgpipe
// builds its ARM and storage clients (publish, destroy, replicate, gc,
// check-deploy, rollout and the server's Azure pull).

import (
	"fmt"
	"os"
	"time"

	"imgpipe/internal/config"
)

// EnvStorageKey holds the storage account key when shared-key access is
// used (Azurite, or accounts without Entra ID data access); without it,
// blobs are reached with the Entra ID credential.
const EnvStorageKey = "AZURE_STORAGE_KEY"

// EnvPollInterval overrides how often long-running operations,
// replication and rollouts are polled (tests and the demo: "100ms").
const EnvPollInterval = "IMGPIPE_POLL_INTERVAL"

// PollIntervalFromEnv is EnvPollInterval's duration, or 0 (the caller's
// default) when it is unset or not a positive duration.
func PollIntervalFromEnv() time.Duration {
	if d, err := config.ParseDuration(os.Getenv(EnvPollInterval)); err == nil && d > 0 {
		return d
	}
	return 0
}

// Connect returns a Publisher for subscription sub, reached as the
// environment says (ConnectionFromEnv; AZURE_STORAGE_KEY for shared-key
// storage access to account, the pipeline file's storage account, or with
// account "" the one each blob's URL names; IMGPIPE_POLL_INTERVAL).
func Connect(sub, account string) (*Publisher, error) {
	cred, opts, err := ConnectionFromEnv().Open()
	if err != nil {
		return nil, err
	}
	clients, err := NewClients(sub, cred, opts)
	if err != nil {
		return nil, err
	}
	access := BlobAccess{Token: cred}
	if key := os.Getenv(EnvStorageKey); key != "" {
		access = BlobAccess{AccountKey: key, AccountName: account}
	}
	p := &Publisher{
		Clients:  clients,
		Blobs:    NewBlobStore(access),
		Uploader: &TransferUploader{A: access, ARMCred: cred, ARMOptions: opts},
		RunID:    fmt.Sprintf("run-%d", time.Now().UnixNano()),
	}
	if d := PollIntervalFromEnv(); d > 0 {
		p.PollInterval = d
	}
	return p, nil
}
