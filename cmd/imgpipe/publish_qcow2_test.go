package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/testenv"
)

// TestPublishQcow2: a pipeline whose source is a compressed qcow2 publishes
// with no other change; the page blob in Azurite is a fixed VHD that
// qemu-img finds identical to the qcow2.
func TestPublishQcow2(t *testing.T) {
	testenv.RequireTool(t, "qemu-img")
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	biosDisk(t, dir)
	src := filepath.Join(dir, "disk.qcow2")
	if out, err := exec.Command("qemu-img", "convert", "-c", "-f", "raw", "-O", "qcow2", "-o", "compression_type=zstd", filepath.Join(dir, "disk.raw"), src).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img: %v\n%s", err, out)
	}
	os.Remove(filepath.Join(dir, "disk.raw"))
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, fmt.Appendf(nil, `
image "app" {
  source  = "disk.qcow2"
  os_type = "Linux"
}
azure "emu" {
  subscription   = %q
  resource_group = "rg-qcow2"
  location       = "westeurope"
  storage {
    account        = %q
    resource_group = "azemu-storage" # where the emulator registers its Azurite account
    container      = "vhds"
    blob_endpoint  = %q
  }
  gallery    = "qcow2_gallery"
  definition = "app"
  version    = "next-patch"
  replication_timeout = "1m"
}
`, env.SubscriptionID, env.Azurite.AccountName, env.Azurite.BlobEndpoint), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := runCLI(t, "plan", "-f", pipeline); err != nil || !strings.Contains(out, "generation V1") {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "publish", "-f", pipeline, "--yes"); err != nil || !strings.Contains(out, "published /subscriptions/") {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	key, err := azblob.NewSharedKeyCredential(env.Azurite.AccountName, env.Azurite.AccountKey)
	if err != nil {
		t.Fatal(err)
	}
	client, err := azblob.NewClientWithSharedKeyCredential(env.Azurite.BlobEndpoint, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	pager := client.NewListBlobsFlatPager("vhds", nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range page.Segment.BlobItems {
			names = append(names, *b.Name)
		}
	}
	if len(names) != 1 {
		t.Fatalf("blobs in vhds: %v", names)
	}
	down := filepath.Join(dir, "down.vhd")
	f, err := os.Create(down)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.DownloadFile(context.Background(), "vhds", names[0], f, nil); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if out, err := exec.Command("qemu-img", "compare", "-f", "vpc", "-F", "qcow2", down, src).CombinedOutput(); err != nil || !strings.Contains(string(out), "identical") {
		t.Fatalf("qemu-img compare of the published blob: %v\n%s", err, out)
	}
}
