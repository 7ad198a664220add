package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

// TestPlanRefusesBeforeUploadCLI: `imgpipe plan` (and publish) against the
// emulator refuse what Azure would refuse only after the upload, with zero
// bytes uploaded and nothing created: the storage account in another region
// than the managed image, and TrustedLaunch on a generation 1 disk.
func TestPlanRefusesBeforeUploadCLI(t *testing.T) {
	// the emulator's storage account is in northeurope
	env := azemutest.StartWithAzurite(t, azemu.Options{Storage: azemu.Storage{Location: "northeurope"}})
	before := env.Server.ResourceIDs("")
	dir := cliEmulatorEnv(t, env)
	biosDisk(t, dir) // a generation 1 disk
	write := func(name, imageExtra, location string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, fmt.Appendf(nil, `
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
  %s
}
azure "emu" {
  subscription   = %q
  resource_group = "rg-refusals"
  location       = %q
  storage {
    account        = %q
    resource_group = "azemu-storage"
    container      = "vhds"
    blob_endpoint  = %q
  }
  gallery    = "refusals"
  definition = "app"
  version    = "1.0.0"
}
`, imageExtra, env.SubscriptionID, location, env.Azurite.AccountName, env.Azurite.BlobEndpoint), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	blobs, err := azblob.NewClientFromConnectionString(env.Azurite.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	noBlobs := func() {
		t.Helper()
		pager := blobs.NewListBlobsFlatPager("vhds", nil)
		for pager.More() {
			page, err := pager.NextPage(context.Background())
			if err != nil {
				return // no container: nothing uploaded
			}
			if len(page.Segment.BlobItems) > 0 {
				t.Fatalf("%d blobs uploaded before the refusal", len(page.Segment.BlobItems))
			}
		}
	}
	for _, tc := range []struct{ name, file, want string }{
		{"storage account in another region", write("far.hcl", "", "westeurope"), "storage account devstoreaccount1 is in northeurope"},
		{"TrustedLaunch on a generation 1 disk", write("tl.hcl", `security_type = "TrustedLaunch"`, "northeurope"), "needs a generation 2 (UEFI) image"},
	} {
		for _, verb := range [][]string{{"plan", "-f", tc.file}, {"publish", "-f", tc.file, "--yes", "--no-catalog"}} {
			out, err := runCLI(t, verb...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "Nothing was uploaded") {
				t.Fatalf("%s: imgpipe %s: %v\n%s", tc.name, verb[0], err, out)
			}
			noBlobs()
			if ids := env.Server.ResourceIDs(""); !slices.Equal(ids, before) {
				t.Fatalf("%s: imgpipe %s changed Azure: %v", tc.name, verb[0], ids)
			}
		}
	}
}
