package transfer_test

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"

	"imgpipe/internal/disk"
	"imgpipe/internal/testenv"
	"imgpipe/internal/transfer"
	"imgpipe/internal/transfer/transfertest"
)

// piece is data written into a test image; zero pieces are written
// explicitly (allocated zeros), others are random.
type piece struct {
	off, n int64
	zero   bool
}

const mib = 1 << 20

// testPieces: a boot area, isolated sectors, zero runs inside written data,
// a run crossing 4 MiB windows, and the last sector.
func testPieces(size int64) []piece {
	return []piece{
		{0, 64 << 10, false},
		{1*mib + 512, 3 * 512, false},
		{5 * mib, 4096, false},
		{5*mib + 4096, 8192, true},
		{5*mib + 12288, 4096, false},
		{10*mib - 2048, 6 * mib, false},
		{20 * mib, 1 * mib, true},
		{size - 512, 512, false},
	}
}

// writeRaw writes a sparse raw image holding pieces and returns the number
// of non-zero bytes.
func writeRaw(t testing.TB, path string, size int64, pieces []piece, seed uint64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 1))
	for _, p := range pieces {
		b := make([]byte, p.n)
		if !p.zero {
			for i := range b {
				b[i] = byte(rng.UintN(255) + 1)
			}
		}
		if _, err := f.WriteAt(b, p.off); err != nil {
			t.Fatal(err)
		}
	}
}

// makeImage writes a test image in format ("raw", "vhd-dynamic", "vhdx").
func makeImage(t testing.TB, dir, format string, size int64, pieces []piece) string {
	t.Helper()
	raw := filepath.Join(dir, "src.raw")
	writeRaw(t, raw, size, pieces, 7)
	switch format {
	case "raw":
		return raw
	case "vhdx":
		out := filepath.Join(dir, "src.vhdx")
		qemuImg(t, "convert", "-f", "raw", "-O", "vhdx", raw, out)
		os.Remove(raw)
		return out
	case "vhd-dynamic":
		out := filepath.Join(dir, "src.vhd")
		qemuImg(t, "convert", "-f", "raw", "-O", "vpc", "-o", "subformat=dynamic,force_size=on", raw, out)
		os.Remove(raw)
		return out
	}
	t.Fatalf("unknown format %s", format)
	return ""
}

func qemuImg(t testing.TB, args ...string) {
	t.Helper()
	testenv.RequireTool(t, "qemu-img")
	out, err := exec.Command("qemu-img", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("qemu-img %v: %v\n%s", args, err, out)
	}
}

// fastRetry keeps fault tests short.
var fastRetry = policy.RetryOptions{MaxRetries: 12, RetryDelay: 5 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond, TryTimeout: time.Minute}

type azEnv struct {
	az  *testenv.Azurite
	key *blob.SharedKeyCredential
}

func startAzurite(t *testing.T) *azEnv {
	t.Helper()
	az := testenv.StartAzurite(t)
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
	return &azEnv{az: az, key: key}
}

func (e *azEnv) blob(t *testing.T, name string) *pageblob.Client {
	t.Helper()
	c, err := pageblob.NewClientWithSharedKeyCredential(e.az.BlobEndpoint+"/images/"+name, e.key, nil)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *azEnv) target(t *testing.T, endpoint, name string, retry policy.RetryOptions) *transfer.BlobTarget {
	t.Helper()
	tg, err := transfer.NewBlobTarget(endpoint+"/images/"+name,
		transfer.BlobCredential{AccountName: e.az.AccountName, AccountKey: e.az.AccountKey},
		transfer.ClientConfig{Retry: retry})
	if err != nil {
		t.Fatal(err)
	}
	return tg
}

func download(t *testing.T, c *pageblob.Client, path string) []byte {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.DownloadFile(context.Background(), f, nil); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixedVHD is what `imgpipe disk convert --to vhd-fixed` writes for src.
func fixedVHD(t *testing.T, src string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), "fixed.vhd")
	if _, err := disk.ConvertFile(context.Background(), src, out, disk.ConvertOptions{To: disk.FormatVHDFixed}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func nonZeroBytes(b []byte) int64 {
	var n int64
	zero := make([]byte, 512)
	for i := 0; i < len(b); i += 512 {
		if !bytes.Equal(b[i:min(i+512, len(b))], zero[:min(512, len(b)-i)]) {
			n += int64(min(512, len(b)-i))
		}
	}
	return n
}

func TestUploadRoundTrip(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	env := startAzurite(t)
	tests := []struct {
		format string
		size   int64
	}{
		{"raw", 40*mib + 1536}, // not a whole MiB: the view pads it
		{"vhd-dynamic", 40 * mib},
		{"vhdx", 40 * mib},
	}
	for _, tc := range tests {
		t.Run(tc.format, func(t *testing.T) {
			dir := t.TempDir()
			src := makeImage(t, dir, tc.format, tc.size, testPieces(tc.size))
			want := fixedVHD(t, src)
			name := tc.format + ".vhd"
			res, err := transfer.Upload(context.Background(), src, env.target(t, env.az.BlobEndpoint, name, policy.RetryOptions{}),
				transfer.Options{Workers: 4, Verify: transfer.VerifyFull, MD5: true})
			if err != nil {
				t.Fatal(err)
			}
			got := download(t, env.blob(t, name), filepath.Join(dir, "down.vhd"))
			if !bytes.Equal(got, want) {
				t.Fatalf("downloaded blob (%d bytes) differs from disk convert output (%d bytes)", len(got), len(want))
			}
			qemuImg(t, "compare", "-f", "vpc", "-F", map[string]string{"raw": "raw", "vhd-dynamic": "vpc", "vhdx": "vhdx"}[tc.format], filepath.Join(dir, "down.vhd"), src)
			sum := md5.Sum(want)
			props, err := env.blob(t, name).GetProperties(context.Background(), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(props.ContentMD5, sum[:]) || res.MD5Hex == "" {
				t.Fatalf("Content-MD5 %x, want %x (result %s)", props.ContentMD5, sum, res.MD5Hex)
			}
			if in := res.Integrity; in.RequestChecksum != transfer.RequestChecksumCRC64 || in.CheckedRanges != res.Ranges ||
				in.ContentMD5 != res.MD5 || in.Verify != transfer.VerifyFull {
				t.Fatalf("integrity %+v does not say what was checked (ranges %d, md5 %s)", in, res.Ranges, res.MD5)
			}
			if nz := nonZeroBytes(want); res.BytesSent != nz || res.DataBytes != nz {
				t.Fatalf("sent %d bytes (planned %d), the image has %d non-zero bytes", res.BytesSent, res.DataBytes, nz)
			}
			if res.Verify == nil || res.Verify.ReadBack != res.DataBytes {
				t.Fatalf("full verify read back %+v, want %d bytes", res.Verify, res.DataBytes)
			}
			if _, err := os.Stat(src + transfer.CheckpointSuffix); !os.IsNotExist(err) {
				t.Fatalf("checkpoint left after a complete upload: %v", err)
			}
		})
	}
}

// TestChecksumPerRequest: without --md5 no Content-MD5 is set (the cost
// grows with the data only), every Put Page carries a CRC64 the service
// checks: bodies damaged on the way are refused by Azurite and sent again,
// and the blob ends identical to the source.
func TestChecksumPerRequest(t *testing.T) {
	env := startAzurite(t)
	dir := t.TempDir()
	size := int64(24 * mib)
	src := makeImage(t, dir, "vhdx", size, testPieces(size))
	want := fixedVHD(t, src)
	px := transfertest.Start(t, env.az.BlobEndpoint, transfertest.Faults{})
	px.Corrupt.Store(3)
	res, err := transfer.Upload(context.Background(), src, env.target(t, px.URL, "crc.vhd", fastRetry), transfer.Options{Workers: 2})
	if err != nil {
		t.Fatal(err)
	}
	if px.PutPagesRefused.Load() != 3 || res.Integrity.ChecksumRetries != 3 {
		t.Fatalf("3 damaged bodies: the service refused %d, the upload resent %d", px.PutPagesRefused.Load(), res.Integrity.ChecksumRetries)
	}
	if in := res.Integrity; in.RequestChecksum != "crc64" || in.CheckedRanges != res.Ranges || in.ContentMD5 != "" || in.Verify != "" {
		t.Fatalf("integrity %+v", in)
	}
	if got := download(t, env.blob(t, "crc.vhd"), filepath.Join(dir, "down.vhd")); !bytes.Equal(got, want) {
		t.Fatal("blob differs from the fixed VHD after damaged bodies were resent")
	}
	props, err := env.blob(t, "crc.vhd").GetProperties(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(props.ContentMD5) != 0 || res.MD5 != "" {
		t.Fatalf("Content-MD5 %x set without MD5: true", props.ContentMD5)
	}

	// A path that damages every body: the upload fails, saying so.
	px.Corrupt.Store(1 << 30)
	_, err = transfer.Upload(context.Background(), src, env.target(t, px.URL, "crc2.vhd", fastRetry), transfer.Options{Workers: 1})
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Fatalf("upload through a path damaging every body: %v", err)
	}
}

// TestZeroRunSkipping: an image where every 4 MiB chunk holds one sector of
// data among allocated zeros. Skipping whole zero chunks would send every
// chunk; imgpipe sends the sectors.
func TestZeroRunSkipping(t *testing.T) {
	env := startAzurite(t)
	dir := t.TempDir()
	size := int64(64 * mib)
	var pieces []piece
	for off := int64(0); off < size; off += 4 * mib {
		pieces = append(pieces, piece{off, 4 * mib, true}, piece{off + 3*mib + 512, 512, false})
	}
	src := makeImage(t, dir, "raw", size, pieces)
	res, err := transfer.Upload(context.Background(), src, env.target(t, env.az.BlobEndpoint, "sparse.vhd", policy.RetryOptions{}),
		transfer.Options{Verify: transfer.VerifySampled})
	if err != nil {
		t.Fatal(err)
	}
	chunkSkipping := int64(16*4*mib) + 512 // every data chunk, plus the footer
	dataBytes := int64(16*512) + 512
	if res.BytesSent != dataBytes {
		t.Fatalf("sent %d bytes, the image holds %d bytes of data", res.BytesSent, dataBytes)
	}
	if res.BytesSent*100 > chunkSkipping {
		t.Fatalf("sent %d bytes, not far below the %d that 4 MiB chunk skipping sends", res.BytesSent, chunkSkipping)
	}
	if res.AllocatedBytes < size {
		t.Fatalf("the crafted raw image should be fully allocated, map says %d", res.AllocatedBytes)
	}
}

func TestUploadWithFaults(t *testing.T) {
	env := startAzurite(t)
	dir := t.TempDir()
	size := int64(40 * mib)
	src := makeImage(t, dir, "raw", size, testPieces(size))
	want := fixedVHD(t, src)
	// Faults on Put Page only: net/http itself replays a GET (verify's
	// reads) whose reused connection was reset, unseen by azcore's retry
	// count, while a PUT reaches the retry policy every time.
	px := transfertest.Start(t, env.az.BlobEndpoint, transfertest.Faults{Seed: 42, Rate: 0.3, Max: 25, OnlyPuts: true})
	res, err := transfer.Upload(context.Background(), src, env.target(t, px.URL, "faulty.vhd", fastRetry),
		transfer.Options{Workers: 6, Verify: transfer.VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	injected := px.Faults429.Load() + px.Faults500.Load() + px.FaultsReset.Load()
	if injected == 0 || res.Retries < injected {
		t.Fatalf("injected %d faults (429 %d, 500 %d, reset %d) but counted %d retries", injected,
			px.Faults429.Load(), px.Faults500.Load(), px.FaultsReset.Load(), res.Retries)
	}
	got := download(t, env.blob(t, "faulty.vhd"), filepath.Join(dir, "down.vhd"))
	if !bytes.Equal(got, want) {
		t.Fatal("blob differs from the fixed VHD after faults")
	}
}

// TestResume interrupts an upload through a SAS URL (the proxy starts
// resetting every connection after a few pages), checks that neither the
// error nor the checkpoint holds a secret, that a changed source or target
// is refused, and that --resume sends only what is missing.
func TestResume(t *testing.T) {
	env := startAzurite(t)
	dir := t.TempDir()
	size := int64(48 * mib)
	src := makeImage(t, dir, "vhdx", size, testPieces(size))
	want := fixedVHD(t, src)
	px := transfertest.Start(t, env.az.BlobEndpoint, transfertest.Faults{})

	sasURL := func(name string) string {
		// Create permission for the blob; a SAS for the blob as the user would get it.
		c, err := pageblob.NewClientWithSharedKeyCredential(px.URL+"/images/"+name, env.key, nil)
		if err != nil {
			t.Fatal(err)
		}
		u, err := c.GetSASURL(sas.BlobPermissions{Read: true, Write: true, Create: true}, time.Now().Add(time.Hour), nil)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	target := func(name string, retry policy.RetryOptions) transfer.Target {
		tg, err := transfer.NewBlobTarget(sasURL(name), transfer.BlobCredential{}, transfer.ClientConfig{Retry: retry})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	noRetry := policy.RetryOptions{MaxRetries: 1, RetryDelay: time.Millisecond, MaxRetryDelay: time.Millisecond}
	const workers = 3
	interrupt := func(name string) int64 {
		px.Break.Store(false)
		before := px.PutPageBytes.Load()
		px.BreakAfterPuts.Store(px.PutPages.Load() + 2)
		_, err := transfer.Upload(context.Background(), src, target(name, noRetry), transfer.Options{Workers: workers, Overwrite: true})
		if err == nil {
			t.Fatal("upload through a breaking proxy succeeded")
		}
		sig := sasURL(name)
		sig = sig[strings.Index(sig, "sig=")+4:]
		if strings.Contains(err.Error(), sig) || strings.Contains(err.Error(), env.az.AccountKey) {
			t.Fatalf("error shows a secret: %v", err)
		}
		cp, rerr := os.ReadFile(src + transfer.CheckpointSuffix)
		if rerr != nil {
			t.Fatalf("no checkpoint after an interrupted upload: %v (upload error %v)", rerr, err)
		}
		for _, secret := range []string{"sig=", sig, env.az.AccountKey, "AccountKey"} {
			if bytes.Contains(cp, []byte(secret)) {
				t.Fatalf("checkpoint holds a secret (%q):\n%s", secret, cp)
			}
		}
		px.Break.Store(false)
		px.BreakAfterPuts.Store(0)
		return px.PutPageBytes.Load() - before
	}

	t.Run("changed source refused", func(t *testing.T) {
		interrupt("a.vhd")
		st, _ := os.Stat(src)
		later := st.ModTime().Add(time.Minute)
		if err := os.Chtimes(src, later, later); err != nil {
			t.Fatal(err)
		}
		_, err := transfer.Upload(context.Background(), src, target("a.vhd", fastRetry), transfer.Options{Resume: true})
		if err == nil || !strings.Contains(err.Error(), "source changed") {
			t.Fatalf("resume after the source changed: %v", err)
		}
		if err := os.Chtimes(src, st.ModTime(), st.ModTime()); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("replaced target refused", func(t *testing.T) {
		interrupt("b.vhd")
		// someone recreates the blob with the same size
		if _, err := env.blob(t, "b.vhd").Create(context.Background(), int64(len(want)), nil); err != nil {
			t.Fatal(err)
		}
		_, err := transfer.Upload(context.Background(), src, target("b.vhd", fastRetry), transfer.Options{Resume: true})
		if !errors.Is(err, transfer.ErrTargetChanged) {
			t.Fatalf("resume onto a replaced blob: %v", err)
		}
	})
	t.Run("resume completes", func(t *testing.T) {
		sent1 := interrupt("c.vhd")
		before := px.PutPageBytes.Load()
		res, err := transfer.Upload(context.Background(), src, target("c.vhd", fastRetry), transfer.Options{Workers: workers, Resume: true, Verify: transfer.VerifyFull})
		if err != nil {
			t.Fatal(err)
		}
		sent2 := px.PutPageBytes.Load() - before
		data := nonZeroBytes(want)
		if !res.Resumed || res.ResumedBytes == 0 {
			t.Fatalf("resume did not use the checkpoint: %+v", res)
		}
		resent := sent1 + sent2 - data
		// one range per worker, plus the footer sector that is always re-sent
		if resent > workers*transfer.MaxRange+512 || resent < 0 {
			t.Fatalf("re-sent %d bytes (first run %d, resume %d, data %d): more than one range per worker", resent, sent1, sent2, data)
		}
		got := download(t, env.blob(t, "c.vhd"), filepath.Join(dir, "down.vhd"))
		if !bytes.Equal(got, want) {
			t.Fatal("resumed blob differs from the fixed VHD")
		}
		t.Logf("first run %d bytes, resume %d bytes, data %d, re-sent %d", sent1, sent2, data, resent)
	})
}
