package testenv

import (
	"testing"

	"imgpipe/internal/azurite"
)

// Well-known Azurite development storage account (documented by Microsoft for
// the storage emulators; not a secret).
const (
	AzuriteAccountName = azurite.AccountName
	AzuriteAccountKey  = azurite.AccountKey
)

// Azurite is a running Azurite blob service on loopback, with in-memory
// persistence. It is stopped by the test's cleanup.
type Azurite = azurite.Instance

// RepoRoot walks up from the working directory to the directory holding go.mod.
func RepoRoot() (string, error) { return azurite.RepoRoot() }

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) { return azurite.FreePort() }

// StartAzurite starts azurite-blob on a free loopback port with in-memory
// persistence, waits until it accepts connections and registers its stop in
// t.Cleanup. It skips the test when Azurite is not installed (fails in CI).
func StartAzurite(t testing.TB) *Azurite {
	t.Helper()
	if _, err := azurite.Binary(); err != nil {
		Missing(t, err.Error())
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		a, stop, err := azurite.Start()
		if err == nil {
			t.Cleanup(stop)
			return a
		}
		lastErr = err
	}
	t.Fatalf("start azurite: %v", lastErr)
	return nil
}
