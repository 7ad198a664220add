package main

import (
	"bytes"
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"

	"imgpipe/internal/disk"
	"imgpipe/internal/testenv"
	"imgpipe/internal/transfer"
	"imgpipe/internal/transfer/transfertest"
)

// scatteredRaw writes a raw image with n pieces of 64 KiB random data, 1 MiB
// apart (so each is its own Put Page), and returns their total size.
func scatteredRaw(t *testing.T, path string, size int64, n int) int64 {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(3, 4))
	b := make([]byte, 64<<10)
	for i := range n {
		for j := range b {
			b[j] = byte(rng.UintN(255) + 1)
		}
		if _, err := f.WriteAt(b, int64(i)*(1<<20)+4096); err != nil {
			t.Fatal(err)
		}
	}
	return int64(n) * int64(len(b))
}

func uploadTestContainer(t *testing.T, az *testenv.Azurite) *blob.SharedKeyCredential {
	t.Helper()
	key, err := blob.NewSharedKeyCredential(az.AccountName, az.AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := container.NewClientWithSharedKeyCredential(az.BlobEndpoint+"/images", key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cc.Create(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	return key
}

func downloadBlob(t *testing.T, url string, key *blob.SharedKeyCredential) []byte {
	t.Helper()
	c, err := pageblob.NewClientWithSharedKeyCredential(url, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.DownloadStream(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func expectedVHD(t *testing.T, src string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "want.vhd")
	if _, err := disk.ConvertFile(context.Background(), src, out, disk.ConvertOptions{To: disk.FormatVHDFixed}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestUploadCommandJSON runs the command in-process with a connection string
// and checks the JSON summary.
func TestUploadCommandJSON(t *testing.T) {
	az := testenv.StartAzurite(t)
	key := uploadTestContainer(t, az)
	dir := t.TempDir()
	src := filepath.Join(dir, "img.raw")
	data := scatteredRaw(t, src, 16<<20, 5)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", az.ConnectionString())
	var out bytes.Buffer
	stdout = &out
	defer func() { stdout = os.Stdout; globals = globalOptions{} }()
	root := newRootCmd()
	root.SetArgs([]string{"upload", src, "--container", "images", "--name", "cli.vhd", "--verify=full", "--md5", "-o", "json"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	var res transfer.Result
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("summary is not JSON: %v\n%s", err, out.String())
	}
	if res.VirtualSize != 16<<20+512 || res.BytesSent != data+512 || res.Ranges != 6 || res.MD5 == "" || res.Verify == nil ||
		res.Integrity.RequestChecksum != "crc64" || res.Integrity.CheckedRanges != 6 || res.Integrity.ContentMD5 != res.MD5 || res.Integrity.Verify != "full" {
		t.Fatalf("unexpected summary: %s", out.String())
	}
	if got := downloadBlob(t, az.BlobEndpoint+"/images/cli.vhd", key); !bytes.Equal(got, expectedVHD(t, src)) {
		t.Fatal("blob differs from the fixed VHD")
	}
	if strings.Contains(out.String(), az.AccountKey) {
		t.Fatal("summary shows the account key")
	}
}

// TestUploadKill9Resume runs the imgpipe binary, kills it with SIGKILL in
// the middle of an upload (slowed down by a proxy), resumes, and checks
// the result and how much was sent twice.
func TestUploadKill9Resume(t *testing.T) {
	az := testenv.StartAzurite(t)
	key := uploadTestContainer(t, az)
	dir := t.TempDir()
	bin := filepath.Join(dir, "imgpipe")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	src := filepath.Join(dir, "img.raw")
	const pieces = 120
	data := scatteredRaw(t, src, 128<<20, pieces)
	want := expectedVHD(t, src)

	px := transfertest.Start(t, az.BlobEndpoint, transfertest.Faults{})
	px.Delay.Store(int64(60 * time.Millisecond))
	const workers = 4
	args := []string{"upload", src, "--account", az.AccountName, "--blob-endpoint", px.URL,
		"--container", "images", "--name", "kill.vhd", "--workers", "4"}
	env := append(os.Environ(), "AZURE_STORAGE_KEY="+az.AccountKey)

	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for px.PutPages.Load() < pieces/3 {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("upload did not progress: %d pages; stderr: %s", px.PutPages.Load(), stderr.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	sent1 := px.PutPageBytes.Load()
	if sent1 >= data {
		t.Fatalf("the upload finished (%d bytes) before it was killed: slow it down", sent1)
	}
	cp, err := os.ReadFile(src + transfer.CheckpointSuffix)
	if err != nil {
		t.Fatalf("no checkpoint after kill -9: %v", err)
	}
	if bytes.Contains(cp, []byte(az.AccountKey)) {
		t.Fatal("checkpoint holds the account key")
	}
	var ck transfer.Checkpoint
	if err := json.Unmarshal(cp, &ck); err != nil {
		t.Fatalf("checkpoint: %v", err)
	}
	// Completed work is a prefix plus what the workers finished around the
	// ranges in flight or queued (one queue slot per worker): a handful of
	// intervals, not one per range.
	if len(ck.Completed) == 0 || len(ck.Completed) > 2*workers+3 {
		t.Fatalf("checkpoint lists %d completed intervals after kill -9 (want 1..%d): %s", len(ck.Completed), 2*workers+3, cp)
	}

	px.Delay.Store(0)
	// Resume naming only the source: the target comes from the checkpoint,
	// the key from the environment.
	cmd = exec.Command(bin, "upload", src, "--resume", "--verify=full", "--workers", "4", "-o", "json")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	sent2 := px.PutPageBytes.Load() - sent1
	var res transfer.Result
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("resume summary: %v\n%s", err, out)
	}
	total := data + 512 // data pieces and the footer
	resent := sent1 + sent2 - total
	// At most one range per worker (each 64 KiB here; 4 MiB at most), plus
	// the footer sector, which a resume always sends again.
	if resent < 0 || resent > workers*(64<<10)+512 {
		t.Fatalf("re-sent %d bytes (killed run %d, resume %d, data %d): more than one range per worker", resent, sent1, sent2, total)
	}
	if got := downloadBlob(t, az.BlobEndpoint+"/images/kill.vhd", key); !bytes.Equal(got, want) {
		t.Fatal("resumed blob differs from the fixed VHD")
	}
	if _, err := os.Stat(src + transfer.CheckpointSuffix); !os.IsNotExist(err) {
		t.Fatal("checkpoint left after a complete upload")
	}
	t.Logf("killed after %d bytes; resume sent %d; re-sent %d bytes (bound %d)", sent1, sent2, resent, workers*(64<<10)+512)
}
