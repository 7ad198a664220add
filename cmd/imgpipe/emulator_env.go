package main

import (
	"os"
	"strings"

	"imgpipe/internal/azemu"
	"imgpipe/internal/config"
)

// What `imgpipe emulator` writes to emulator.env for the storage side, and
// what the commands read back from the environment.
const (
	blobEndpointEnv   = azemu.EnvBlobEndpoint
	storageAccountEnv = azemu.EnvStorageAccount
)

// storageEndpointFromEnv fills the storage block's blob endpoint from
// IMGPIPE_BLOB_ENDPOINT (set by `source emulator.env`) when the pipeline file
// names none, so one file works with whatever port the emulator's Azurite got.
// It applies only when AZURE_STORAGE_ACCOUNT is unset or is the file's account.
func storageEndpointFromEnv(az *config.Azure) {
	if az == nil || az.Storage == nil || az.Storage.BlobEndpoint != "" {
		return
	}
	ep := strings.TrimRight(os.Getenv(blobEndpointEnv), "/")
	if acct := os.Getenv(storageAccountEnv); ep == "" || (acct != "" && !strings.EqualFold(acct, az.Storage.Account)) {
		return
	}
	az.Storage.BlobEndpoint = ep
}

func storageEndpointOf(az *config.Azure) string {
	if az == nil || az.Storage == nil {
		return ""
	}
	return az.Storage.BlobEndpoint
}

// emulatorHint: a local emulator not running, or an Azurite without the
// flags the SDK needs (exit.go renders it).
func emulatorHint(err error) string { return azemu.Hint(err) }

// checkLocalEndpoints fails fast when a loopback endpoint has nothing listening.
func checkLocalEndpoints(blobEndpoints ...string) error {
	return azemu.CheckEndpoints(blobEndpoints...)
}
