// Package emulatorenv is the environment a running local emulator sets
// (imgpipe emulator writes it to emulator.env) and what a client says when
// the emulator it points at is not running. Clients read it without
// depending on the emulator itself.
package emulatorenv

// The emulator writes the same names (internal/azemu may not import its
// clients; TestNamesMatchTheEmulator keeps the two alike).
const (
	EnvARMEndpoint    = "IMGPIPE_ARM_ENDPOINT"
	EnvBlobEndpoint   = "IMGPIPE_BLOB_ENDPOINT" // the emulator's Azurite blob endpoint
	EnvStorageAccount = "AZURE_STORAGE_ACCOUNT" // as az reads it
	EnvStorageKey     = "AZURE_STORAGE_KEY"
)
