package transfer

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestTargetSpec: credentials in az's order (a connection string, then
// account + key, then Entra ID; an explicit value beats the environment at
// each step), --account from AZURE_STORAGE_ACCOUNT, and the emulator's blob
// endpoint only for the emulator's account.
func TestTargetSpec(t *testing.T) {
	env := StorageEnv{ConnectionString: "envcs", AccountKey: "envkey", Account: "devstoreaccount1", EmulatorEndpoint: "http://127.0.0.1:41234/devstoreaccount1"}
	for _, c := range []struct {
		name string
		spec TargetSpec
		env  StorageEnv
		want BlobCredential
	}{
		{"flag connection string first", TargetSpec{ConnectionString: "cs", AccountKey: "k"}, env, BlobCredential{ConnectionString: "cs"}},
		{"flag key before env connection string", TargetSpec{AccountKey: "k"}, env, BlobCredential{AccountName: "devstoreaccount1", AccountKey: "k"}},
		{"env connection string before env key", TargetSpec{}, env, BlobCredential{ConnectionString: "envcs"}},
		{"env key", TargetSpec{Account: "acct"}, StorageEnv{AccountKey: "envkey"}, BlobCredential{AccountName: "acct", AccountKey: "envkey"}},
		{"nothing: Entra ID", TargetSpec{}, StorageEnv{}, BlobCredential{}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := c.spec.WithEnv(c.env).Credential(); got != c.want {
				t.Fatalf("credential %+v, want %+v", got, c.want)
			}
		})
	}
	s := TargetSpec{Container: "vhds", Name: "a b/c.vhd"}.WithEnv(StorageEnv{Account: "devstoreaccount1", EmulatorEndpoint: env.EmulatorEndpoint})
	if s.Account != "devstoreaccount1" || s.Endpoint != env.EmulatorEndpoint {
		t.Fatalf("account/endpoint from the environment: %+v", s)
	}
	if u, err := s.blobURL(BlobCredential{}); err != nil || u != env.EmulatorEndpoint+"/vhds/a%20b/c.vhd" {
		t.Fatalf("blob URL %q %v", u, err)
	}
	other := TargetSpec{Account: "prod", Container: "vhds", Name: "x.vhd"}.WithEnv(StorageEnv{Account: "devstoreaccount1", EmulatorEndpoint: env.EmulatorEndpoint})
	if u, _ := other.blobURL(BlobCredential{}); u != "https://prod.blob.core.windows.net/vhds/x.vhd" {
		t.Fatalf("another account must not get the emulator's endpoint: %q", u)
	}
	if u, _ := other.blobURL(BlobCredential{ConnectionString: "cs"}); u != "vhds/x.vhd" {
		t.Fatalf("with a connection string the endpoint comes from it: %q", u)
	}
	for _, bad := range []TargetSpec{{}, {BlobURL: "https://a.blob.core.windows.net/c/b", DiskID: "/x"}, {Container: "c"}, {Container: "c", Name: "n"}} {
		if _, err := bad.Target("src"); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
	if _, err := (TargetSpec{BlobURL: "http://127.0.0.1:1/c/b", AccountKey: "a2V5"}).Target("src"); err != nil {
		t.Errorf("account from an Azurite URL: %v", err)
	}
	if _, err := (TargetSpec{BlobURL: "https://x.example/", AccountKey: "a2V5"}).Target("src"); err == nil || !strings.Contains(err.Error(), "needs the account name") {
		t.Errorf("a key without an account: %v", err)
	}
	for in, want := range map[string]string{
		"https://acct.blob.core.windows.net/c/b": "acct", "http://127.0.0.1:10000/devstoreaccount1/c/b": "devstoreaccount1", "::": "",
	} {
		if got := AccountFromURL(in); got != want {
			t.Errorf("AccountFromURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTargetSpecFromCheckpoint(t *testing.T) {
	dir := t.TempDir()
	if _, err := (TargetSpec{}).FromCheckpoint(filepath.Join(dir, "none.json")); err == nil || !strings.Contains(err.Error(), "nothing to resume") {
		t.Fatalf("no checkpoint: %v", err)
	}
	p := filepath.Join(dir, "cp.json")
	for _, id := range []TargetIdentity{
		{Kind: "disk", DiskID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d"},
		{Kind: "blob", URL: "https://acct.blob.core.windows.net/vhds/x.vhd"},
	} {
		if err := saveCheckpoint(p, &Checkpoint{Version: checkpointVersion, Source: SourceFingerprint{VirtualSize: 1 << 20}, Target: id}); err != nil {
			t.Fatal(err)
		}
		s, err := (TargetSpec{Account: "acct"}).FromCheckpoint(p)
		if err != nil || s.DiskID != id.DiskID || s.BlobURL != id.URL || s.Account != "acct" {
			t.Fatalf("target %+v from the checkpoint: %+v %v", id, s, err)
		}
	}
	if err := os.WriteFile(p, []byte(`{"version":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (TargetSpec{}).FromCheckpoint(p); err == nil || !strings.Contains(err.Error(), "delete it to start the upload over") {
		t.Fatalf("a bad checkpoint: %v", err)
	}
}

func TestResultSummary(t *testing.T) {
	r := &Result{Source: "a.vhdx", Target: "blob https://x/c/b", VirtualSize: 16<<20 + 512, BytesSent: 2 << 20, Ranges: 3, Seconds: 2,
		Resumed: true, ResumedBytes: 1 << 20, Integrity: Integrity{RequestChecksum: "crc64", CheckedRanges: 3},
		Verify: &VerifyResult{Mode: VerifyFull, PageRanges: 3, ReadBack: 2 << 20, Samples: 3}, Warnings: []string{"w"}, Checkpoint: "a.vhdx.cp"}
	got := strings.Join(r.Summary(), "\n")
	for _, want := range []string{"uploaded a.vhdx to blob https://x/c/b", "virtual size   16.0 MiB (16777728 bytes, fixed VHD)",
		"data sent      2.0 MiB in 3 ranges (0 retries)", "resumed        1.0 MiB already on the target", "duration       2s, 1.0 MiB/s",
		"integrity      crc64 checked by the service on 3 Put Page requests", "verified       full: 3 page ranges match, 2.0 MiB read back in 3 pieces", "  warning: w"} {
		if !strings.Contains(got, want) {
			t.Errorf("summary lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "Content-MD5") {
		t.Errorf("no MD5 computed, yet:\n%s", got)
	}
	if r.Resumable(nil) || !r.Resumable(os.ErrDeadlineExceeded) || r.Resumable(ErrVerify) {
		t.Error("Resumable: only a failed upload that sent something, not a verification failure")
	}
	if (&Result{Target: "managed disk /x", Checkpoint: "c", BytesSent: 1}).Resumable(os.ErrClosed) {
		t.Error("a managed disk upload is started over, not resumed")
	}
}
