package azure

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/config"
	"imgpipe/internal/disk/disktest"
	"imgpipe/internal/source"
	"imgpipe/internal/testenv"
)

// makeDisk writes a small disk image with a partition table of the given
// generation ("V1": MBR with boot code; "V2": protective MBR + GPT with an
// EFI System Partition) and some data, and converts it to VHDX with
// qemu-img. seed changes the data (a "rebuilt" image).
func makeDisk(t testing.TB, gen string, seed byte) string {
	t.Helper()
	return makeDiskSized(t, gen, seed, 8<<20)
}

func makeDiskSized(t testing.TB, gen string, seed byte, size int64) string {
	t.Helper()
	qemu := testenv.RequireTool(t, "qemu-img")
	dir := t.TempDir()
	raw := filepath.Join(dir, "disk.raw")
	buf := make([]byte, 64<<10)
	switch gen {
	case "V1":
		copy(buf, disktest.ActiveLinuxSector(uint32(size/512-2048)))
	case "V2":
		e := buf[446:]
		e[4] = 0xEE
		binary.LittleEndian.PutUint32(e[8:], 1)
		binary.LittleEndian.PutUint32(e[12:], uint32(size/512-1))
		h := buf[512:]
		copy(h, "EFI PART")
		binary.LittleEndian.PutUint32(h[8:], 0x00010000)
		binary.LittleEndian.PutUint32(h[12:], 92)
		binary.LittleEndian.PutUint64(h[72:], 2)   // entries LBA
		binary.LittleEndian.PutUint32(h[80:], 128) // entries
		binary.LittleEndian.PutUint32(h[84:], 128) // entry size
		esp := []byte{0x28, 0x73, 0x2A, 0xC1, 0x1F, 0xF8, 0xD2, 0x11, 0xBA, 0x4B, 0x00, 0xA0, 0xC9, 0x3E, 0xC9, 0x3B}
		copy(buf[1024:], esp)
	}
	buf[510], buf[511] = 0x55, 0xAA
	f, err := os.Create(raw)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(buf, 0); err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat(fmt.Sprintf("imgpipe test data %d ", seed), 4096))
	if _, err := f.WriteAt(data, 3<<20); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(size); err != nil {
		t.Fatal(err)
	}
	f.Close()
	vhdx := filepath.Join(dir, "disk.vhdx")
	if out, err := exec.Command(qemu, "convert", "-f", "raw", "-O", "vhdx", raw, vhdx).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img convert: %v\n%s", err, out)
	}
	return vhdx
}

// testEnv is azemu + Azurite and a Publisher wired to them through the real SDK.
type testEnv struct {
	emu *azemutest.Env
	pub *Publisher
	sub string
	rg  string // the resource group (and container) of the running subtest
	// transport counts the answers the SDK received (faults included)
	transport *countingTransport
}

type countingTransport struct {
	inner  policy.Transporter
	mu     sync.Mutex
	status map[int]int
	failed int // operation-status bodies reporting Failed
}

func (c *countingTransport) Do(req *http.Request) (*http.Response, error) {
	resp, err := c.inner.Do(req)
	if err != nil {
		return resp, err
	}
	failed := false
	if strings.Contains(req.URL.Path, "/operations/") && resp.Body != nil {
		b, rerr := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		failed = rerr == nil && bytes.Contains(b, []byte(`"Failed"`))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.status == nil {
		c.status = map[int]int{}
	}
	c.status[resp.StatusCode]++
	if failed {
		c.failed++
	}
	return resp, nil
}

func (c *countingTransport) counts() (map[int]int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[int]int{}
	for k, v := range c.status {
		out[k] = v
	}
	return out, c.failed
}

func startEnv(t *testing.T, opts azemu.Options) *testEnv {
	t.Helper()
	env := azemutest.StartWithAzurite(t, opts)
	co := env.ClientOptions()
	ct := &countingTransport{inner: co.Transport}
	co.Transport = ct
	clients, err := NewClients(env.SubscriptionID, env.Credential(), co)
	if err != nil {
		t.Fatal(err)
	}
	access := BlobAccess{AccountName: env.Azurite.AccountName, AccountKey: env.Azurite.AccountKey}
	return &testEnv{emu: env, sub: env.SubscriptionID, transport: ct, pub: &Publisher{
		Clients:      clients,
		Blobs:        NewBlobStore(access),
		Uploader:     &TransferUploader{A: access, ARMCred: env.Credential(), ARMOptions: co},
		PollInterval: 50 * time.Millisecond,
		Consistency:  Consistency{Window: 20 * time.Second, Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		RunID:        "test-run",
	}}
}

// pipeline is an HCL pipeline file for the test environment; extra goes
// into the azure block, imageExtra into the image block.
func (e *testEnv) pipeline(t *testing.T, source, imageExtra, extra string) *config.File {
	t.Helper()
	src := fmt.Sprintf(`
image "web" {
  source  = %q
  os_type = "Linux"
  %s
}
azure "test" {
  subscription   = %q
  resource_group = %q
  location       = "westeurope"
  storage {
    account        = "devstoreaccount1"
    resource_group = %q
    container      = %q
    blob_endpoint  = %q
  }
  gallery    = %q
  definition = "web"
  version    = "1.0.0"
  target_region "westeurope" {
    replicas = 2
  }
  target_region "northeurope" {}
  target_region "eastus" {
    storage_account_type = "Standard_ZRS"
  }
  replication_timeout = "1m"
  %s
}
`, source, imageExtra, e.sub, e.rg, azemu.DefaultStorageResourceGroup, strings.ToLower(e.rg), e.emu.Azurite.BlobEndpoint, galleryFor(e.rg), extra)
	f, err := config.Parse([]byte(src), filepath.Join(t.TempDir(), "pipeline.hcl"))
	if err != nil {
		t.Fatalf("pipeline: %v", err)
	}
	return f
}

// galleryFor names the gallery of a test's resource group: gallery names are
// unique per subscription (azemu refuses a second "gal" in another group).
func galleryFor(rg string) string {
	return "gal_" + strings.ReplaceAll(strings.TrimPrefix(rg, "rg-"), "-", "_")
}

func (e *testEnv) desired(t *testing.T, f *config.File) *Desired {
	t.Helper()
	a, err := f.AzureTarget("")
	if err != nil {
		t.Fatal(err)
	}
	img := f.Image(a.Image)
	src, err := source.Inspect(context.Background(), img.Source)
	if err != nil {
		t.Fatal(err)
	}
	return &Desired{Image: *img, Azure: *a, Source: src}
}

// resources lists what exists in the emulator (ids), for before/after comparisons.
func (e *testEnv) resources() []string {
	var out []string
	for _, id := range e.emu.Server.ResourceIDs("") {
		out = append(out, strings.ToLower(id))
	}
	return out
}

// TestAgainstAzemu runs the integration tests through the real SDK against
// one azemu + Azurite, each subtest in its own resource group.
func TestAgainstAzemu(t *testing.T) {
	e := startEnv(t, azemu.Options{})
	tests := []struct {
		name string
		fn   func(*testing.T, *testEnv)
	}{
		{"PublishFromNothingThenNoOp", testPublishFromNothingThenNoOp},
		{"Gen2IntoV1DefinitionRefusedBeforeUpload", testGen2IntoV1DefinitionRefusedBeforeUpload},
		{"TrustedLaunchFromVHD", testTrustedLaunchFromVHD},
		{"StandardFromVHD", testStandardFromVHD},
		{"LocationWarning", testLocationWarning},
		{"DirectToDisk", testDirectToDisk},
		{"FailedVersionRemade", testFailedVersionRemade},
		{"DropManagedImage", testDropManagedImage},
		{"DestroyGalleryInOrderWhileOutOfOrderFails", testDestroyGalleryInOrderWhileOutOfOrderFails},
		{"ReplicateChecksTheSource", testReplicateChecksTheSource},
		{"CheckDeploy", testCheckDeploy},
		{"PublishKilledAtEachStepResumes", testPublishKilledAtEachStepResumes},
		{"PublishConvergesUnderFaults", testPublishConvergesUnderFaults},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			saved := *e.pub
			e.rg = "rg-" + strings.ToLower(tt.name)
			if len(e.rg) > 40 {
				e.rg = e.rg[:40]
			}
			defer func() {
				*e.pub = saved
				_ = e.emu.Server.SetReplicaPolicy(azemu.ReplicaPolicyCurrent)
				e.emu.Server.SetFaults(azemu.Faults{})
			}()
			tt.fn(t, e)
		})
	}
}
