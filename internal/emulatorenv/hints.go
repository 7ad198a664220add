package emulatorenv

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
)

// What a client of the local emulators says when one is not running, or
// when Azurite was started without the flags the Azure SDK for Go needs.
// The environment is the one emulator.env sets (EnvARMEndpoint,
// EnvBlobEndpoint).

// Hint is the "what to do" for an error caused by a local emulator's state,
// or "" when err is not one.
func Hint(err error) string {
	var he *HintedError
	if errors.As(err, &he) {
		return he.Hint
	}
	if h := azuriteVersionHint(err); h != "" {
		return h
	}
	return notRunningHint(err)
}

// HintedError carries its own hint (Hint returns it).
type HintedError struct{ Msg, Hint string }

func (e *HintedError) Error() string { return e.Msg }

// CheckEndpoints fails fast, before any SDK call retries for minutes, when
// an endpoint on loopback (the emulator's ARM endpoint from the
// environment, or the given blob endpoints) has nothing listening.
func CheckEndpoints(blobEndpoints ...string) error {
	for _, ep := range append([]string{os.Getenv(EnvARMEndpoint)}, blobEndpoints...) {
		if host, port, ok := loopbackHostPort(ep); ok && refused(host, port) {
			return &HintedError{Msg: fmt.Sprintf("cannot connect to %s: connection refused", ep), Hint: notRunningAt(host, port)}
		}
	}
	return nil
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

// notRunningHint explains a failed connection to a local emulator: nothing
// listens on the loopback address an endpoint points at. It names which
// emulator by comparing the address with the environment. A refused dial
// inside err is used when the SDK kept it; otherwise (Entra ID sign-in
// retries until its deadline and keeps only text) the environment's
// loopback endpoints are probed once.
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
	for _, env := range []string{EnvARMEndpoint, EnvBlobEndpoint} {
		if host, port, ok := loopbackHostPort(os.Getenv(env)); ok && refused(host, port) {
			return notRunningAt(host, port)
		}
	}
	return ""
}

func notRunningAt(host, port string) string {
	addr := net.JoinHostPort(host, port)
	switch {
	case sameHostPort(os.Getenv(EnvARMEndpoint), host, port):
		return fmt.Sprintf("nothing listens on %s, the ARM endpoint in %s: the Azure emulator (imgpipe emulator) is not running. Start it (imgpipe emulator --state ./emu --start-azurite) and source ./emu/emulator.env again", addr, EnvARMEndpoint)
	case sameHostPort(os.Getenv(EnvBlobEndpoint), host, port):
		return fmt.Sprintf("nothing listens on %s, the blob endpoint in %s: the emulator's Azurite is not running (it stops with imgpipe emulator). Start the emulator again (imgpipe emulator --state ./emu --start-azurite) and source ./emu/emulator.env again", addr, EnvBlobEndpoint)
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
