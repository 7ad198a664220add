package azemu

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestListenWarnings(t *testing.T) {
	for _, tc := range []struct {
		addr string
		warn bool
	}{
		{"127.0.0.1:8443", false}, {"[::1]:8443", false}, {"localhost:8443", false},
		{"0.0.0.0:8443", true}, {":8443", true}, {"[::]:8443", true}, {"192.0.2.1:8443", true},
	} {
		w := ListenWarnings(tc.addr, DefaultClientSecret)
		if (len(w) > 0) != tc.warn {
			t.Errorf("%s: warnings %q", tc.addr, w)
		}
		if tc.warn && !strings.Contains(w[0], "well-known client secret") {
			t.Errorf("%s: the warning does not name the well-known secret: %q", tc.addr, w[0])
		}
	}
	if w := ListenWarnings("0.0.0.0:1", "my-own-secret"); len(w) != 1 || strings.Contains(w[0], "well-known") {
		t.Errorf("own secret: %q", w)
	}
}

// TestStartLocal: the env file carries the ARM side and, with a blob
// service, the storage account and key (0600); JSON never carries the key.
func TestStartLocal(t *testing.T) {
	dir := t.TempDir()
	var notices []string
	l, err := StartLocal(LocalOptions{Listen: "127.0.0.1:0", StateDir: dir, Notice: func(s string) { notices = append(notices, s) },
		Options: Options{Storage: Storage{BlobEndpoint: "http://127.0.0.1:1/devstoreaccount1", AccountName: "devstoreaccount1", AccountKey: "a2V5"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	b, err := os.ReadFile(filepath.Join(dir, "emulator.env"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"export " + EnvARMEndpoint + "=" + l.Server.URL(), "export " + EnvBlobEndpoint + "=http://127.0.0.1:1/devstoreaccount1",
		"export " + EnvStorageAccount + "=devstoreaccount1", "export " + EnvStorageKey + "=a2V5", "export AZURE_SUBSCRIPTION_ID=" + SubscriptionID} {
		if !strings.Contains(string(b), want) {
			t.Errorf("emulator.env lacks %q:\n%s", want, b)
		}
	}
	if st, _ := os.Stat(filepath.Join(dir, "emulator.env")); st.Mode().Perm() != 0o600 {
		t.Errorf("emulator.env mode %v", st.Mode())
	}
	if l.Env.StorageAccountID == "" || l.Env.StateDir != dir || len(notices) != 0 {
		t.Errorf("env %+v, notices %q", l.Env, notices)
	}
	for _, bad := range []LocalOptions{{Listen: "127.0.0.1:0", AzuritePort: 10000}, {Listen: "127.0.0.1:0", StartAzurite: true, Options: Options{Storage: Storage{BlobEndpoint: "http://x"}}}} {
		if _, err := StartLocal(bad); err == nil {
			t.Errorf("%+v accepted", bad)
		}
	}
}
