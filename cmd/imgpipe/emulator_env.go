package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"imgpipe/internal/config"
)

// What `imgpipe emulator` writes to emulator.env for the storage side, and
// what the commands read back from the environment.
const (
	blobEndpointEnv   = "IMGPIPE_BLOB_ENDPOINT" // the emulator's Azurite blob endpoint
	storageAccountEnv = "AZURE_STORAGE_ACCOUNT" // as az reads it
	armEndpointEnv    = "IMGPIPE_ARM_ENDPOINT"
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
	if ep == "" {
		return
	}
	if acct := os.Getenv(storageAccountEnv); acct != "" && !strings.EqualFold(acct, az.Storage.Account) {
		return
	}
	az.Storage.BlobEndpoint = ep
}

// notRunningHint explains a failed connection to a local emulator: nothing
// listens on the loopback address an endpoint points at. It names which
// emulator by comparing the address with the environment emulator.env sets
// (IMGPIPE_ARM_ENDPOINT, IMGPIPE_BLOB_ENDPOINT). A refused dial inside err
// is used when the SDK kept it; otherwise (Entra ID sign-in retries until
// its deadline and keeps only text) the environment's loopback endpoints
// are probed once.
func notRunningHint(err error) string {
	var op *net.OpError
	if errors.Is(err, syscall.ECONNREFUSED) && errors.As(err, &op) && op.Addr != nil {
		if host, port, serr := net.SplitHostPort(op.Addr.String()); serr == nil {
			if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
				return notRunningAt(host, port)
			}
		}
	}
	msg := err.Error()
	if !strings.Contains(msg, "connection refused") && !strings.Contains(msg, "deadline exceeded") &&
		!strings.Contains(msg, "unable to resolve an endpoint") && !strings.Contains(msg, "dial tcp") {
		return ""
	}
	for _, env := range []string{armEndpointEnv, blobEndpointEnv} {
		if host, port, ok := loopbackHostPort(os.Getenv(env)); ok && refused(host, port) {
			return notRunningAt(host, port)
		}
	}
	return ""
}

func notRunningAt(host, port string) string {
	addr := net.JoinHostPort(host, port)
	switch {
	case sameHostPort(os.Getenv(armEndpointEnv), host, port):
		return fmt.Sprintf("nothing listens on %s, the ARM endpoint in %s: the Azure emulator (imgpipe emulator) is not running. Start it (imgpipe emulator --state ./emu --start-azurite) and source ./emu/emulator.env again", addr, armEndpointEnv)
	case sameHostPort(os.Getenv(blobEndpointEnv), host, port):
		return fmt.Sprintf("nothing listens on %s, the blob endpoint in %s: the emulator's Azurite is not running (it stops with imgpipe emulator). Start the emulator again (imgpipe emulator --state ./emu --start-azurite) and source ./emu/emulator.env again", addr, blobEndpointEnv)
	case port == "10000":
		return fmt.Sprintf("nothing listens on %s, Azurite's default blob port: Azurite is not running. Start it (azurite-blob --inMemoryPersistence --skipApiVersionCheck --loose), or run imgpipe emulator --start-azurite, source its emulator.env and drop blob_endpoint from the pipeline file so the emulator's Azurite is used", addr)
	}
	return fmt.Sprintf("nothing listens on %s (loopback): the local emulator this endpoint points at is not running; start it (imgpipe emulator --start-azurite, or Azurite) and check the endpoints in the pipeline file and the environment", addr)
}

func loopbackHostPort(endpoint string) (host, port string, ok bool) {
	if endpoint == "" {
		return "", "", false
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", "", false
	}
	host, port = u.Hostname(), u.Port()
	if port == "" {
		port = map[string]string{"https": "443", "http": "80"}[u.Scheme]
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	return host, port, ip != nil && ip.IsLoopback() && port != ""
}

// refused reports whether a TCP connection to host:port is refused now.
func refused(host, port string) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(host, port), time.Second)
	if err == nil {
		c.Close()
		return false
	}
	return errors.Is(err, syscall.ECONNREFUSED)
}

func sameHostPort(endpoint, host, port string) bool {
	h, p, ok := loopbackHostPort(endpoint)
	return ok && h == host && p == port
}

// azuriteVersionHint recognises Azurite refusing the storage service version
// the Azure SDK for Go sends (400 InvalidHeaderValue, "The API version ... is
// not supported by Azurite"): the SDK is newer than the newest Azurite.
func azuriteVersionHint(err error) string {
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), "not supported by Azurite") {
		return ""
	}
	return "Azurite refused the storage service version the Azure SDK for Go uses, which is newer than Azurite knows: restart Azurite with --skipApiVersionCheck (and --loose), e.g. azurite-blob --inMemoryPersistence --skipApiVersionCheck --loose, or let imgpipe emulator --start-azurite start it with those flags"
}

// emulatorHint is the hint for an error caused by a local emulator's state
// (not running, or an Azurite started without the flags the SDK needs).
func emulatorHint(err error) string {
	var he *hintedError
	if errors.As(err, &he) {
		return he.hint
	}
	if h := azuriteVersionHint(err); h != "" {
		return h
	}
	return notRunningHint(err)
}

// checkLocalEndpoints fails fast, before any SDK call retries for minutes,
// when an endpoint on loopback (the emulator's ARM endpoint from the
// environment, or the given blob endpoints) has nothing listening.
func checkLocalEndpoints(blobEndpoints ...string) error {
	for _, ep := range append([]string{os.Getenv(armEndpointEnv)}, blobEndpoints...) {
		if host, port, ok := loopbackHostPort(ep); ok && refused(host, port) {
			return &hintedError{msg: fmt.Sprintf("cannot connect to %s: connection refused", ep), hint: notRunningAt(host, port)}
		}
	}
	return nil
}

// hintedError carries its own "what to do" (emulatorHint returns it).
type hintedError struct{ msg, hint string }

func (e *hintedError) Error() string { return e.msg }

func storageEndpointOf(az *config.Azure) string {
	if az == nil || az.Storage == nil {
		return ""
	}
	return az.Storage.BlobEndpoint
}
