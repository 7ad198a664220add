package emulatorenv

import (
	"fmt"
	"net"
	"strings"
	"testing"
)

// TestHints: a loopback endpoint with nothing listening fails at once,
// and the hint names which emulator is not running (from the environment
// emulator.env sets).
func TestHints(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // now refused
	arm, blob := "https://"+addr, "http://"+addr+"/devstoreaccount1"
	for _, c := range []struct {
		env, blob, want string
	}{
		{EnvARMEndpoint, "", "the Azure emulator (imgpipe emulator) is not running"},
		{EnvBlobEndpoint, blob, "the emulator's Azurite is not running"},
		{"", blob, "the local emulator this endpoint points at is not running"},
	} {
		t.Setenv(EnvARMEndpoint, "")
		t.Setenv(EnvBlobEndpoint, "")
		if c.env == EnvARMEndpoint {
			t.Setenv(c.env, arm)
		} else if c.env != "" {
			t.Setenv(c.env, blob)
		}
		err := CheckEndpoints(c.blob)
		if err == nil || !strings.Contains(err.Error(), "connection refused") || !strings.Contains(Hint(fmt.Errorf("plan: %w", err)), c.want) {
			t.Errorf("%s: %v / %q, want %q", c.env, err, Hint(err), c.want)
		}
		// the SDK's own error text, without the dial error kept
		if c.env != "" && !strings.Contains(Hint(fmt.Errorf("dial tcp %s: connect: connection refused", addr)), c.want) {
			t.Errorf("%s: no hint from the error text", c.env)
		}
	}
	if err := CheckEndpoints("https://acct.blob.core.windows.net"); err != nil {
		t.Errorf("not loopback: %v", err)
	}
	if h := Hint(fmt.Errorf("some other failure")); h != "" {
		t.Errorf("hint for an unrelated error: %q", h)
	}
}
