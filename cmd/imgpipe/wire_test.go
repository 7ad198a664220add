package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	engine "imgpipe/internal/pipeline"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/onprem"
)

// cliEmulatorEnv points the CLI at azemu and Azurite the way the environment
// `imgpipe emulator` prints does, and returns a work directory.
func cliEmulatorEnv(t *testing.T, env *azemutest.Env) string {
	t.Helper()
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, env.Server.CACertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	o := env.Server.Options()
	vars := map[string]string{
		"IMGPIPE_ARM_ENDPOINT":  env.Server.URL(),
		"IMGPIPE_CA_CERT":       ca,
		"AZURE_AUTHORITY_HOST":  env.Server.URL(),
		"AZURE_TENANT_ID":       o.TenantID,
		"AZURE_CLIENT_ID":       o.ClientID,
		"AZURE_CLIENT_SECRET":   o.ClientSecret,
		"AZURE_SUBSCRIPTION_ID": "",
		"IMGPIPE_POLL_INTERVAL": "50ms",
		"IMGPIPE_CATALOG":       filepath.Join(dir, "catalog.db"),
	}
	if env.Azurite != nil {
		vars["AZURE_STORAGE_KEY"] = env.Azurite.AccountKey
	}
	for k, v := range vars {
		t.Setenv(k, v)
	}
	return dir
}

// variantDisk writes a V1 raw disk whose data differs by marker.
func variantDisk(t *testing.T, path, marker string) {
	t.Helper()
	dir := t.TempDir()
	biosDisk(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "disk.raw"))
	if err != nil {
		t.Fatal(err)
	}
	copy(b[2<<20:], strings.Repeat(marker, 100))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func mustCLI(t *testing.T, args ...string) string {
	t.Helper()
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("imgpipe %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestGCAndRevokeThroughCLI publishes three versions, revokes one (the
// gallery version is excluded from latest and tagged) and runs gc -f with
// the file's retention block: first deprecation in Azure, then deletion of
// the version, its managed image and its blob, in dependency order.
func TestGCAndRevokeThroughCLI(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	ctx := context.Background()
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, fmt.Appendf(nil, `
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
azure "emu" {
  subscription   = %q
  resource_group = "rg-gc"
  location       = "westeurope"
  storage {
    account       = %q
    resource_group = "azemu-storage" # where the emulator registers its Azurite account
    container     = "vhds"
    blob_endpoint = %q
  }
  gallery    = "gc_gallery"
  definition = "app"
  version    = "next-patch"
  target_region "northeurope" {}
  replication_timeout = "1m"
}
retention {
  keep_last    = 1
  keep_within  = "1h"
  grace_period = "0h"
  exclude_tags = { pinned = "" }
  exclude_regions = ["Japan East"]
}
`, env.SubscriptionID, env.Azurite.AccountName, env.Azurite.BlobEndpoint), 0o644); err != nil {
		t.Fatal(err)
	}
	for i, m := range []string{"one", "two", "three"} {
		variantDisk(t, filepath.Join(dir, "disk.raw"), m)
		out := mustCLI(t, "publish", "-f", pipeline, "--yes")
		if want := fmt.Sprintf("versions/1.0.%d", i); !strings.Contains(out, want) {
			t.Fatalf("publish %s: want %s\n%s", m, want, out)
		}
	}
	cf, err := armcompute.NewClientFactory(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	versions := cf.NewGalleryImageVersionsClient()

	// revoke 1.0.1: excluded from latest and tagged in Azure, Revoked in the catalog
	out := mustCLI(t, "revoke", "app", "1.0.1", "--reason", "CVE-2026-1")
	if !strings.Contains(out, "done: exclude-from-latest-and-tag gallery_version") || strings.Contains(out, "still to do") {
		t.Fatalf("revoke:\n%s", out)
	}
	v, err := versions.Get(ctx, "rg-gc", "gc_gallery", "app", "1.0.1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pp := v.Properties.PublishingProfile; pp.ExcludeFromLatest == nil || !*pp.ExcludeFromLatest || v.Tags["revoked"] == nil || *v.Tags["revoked"] != "CVE-2026-1" {
		t.Errorf("1.0.1 after revoke: excludeFromLatest %v, tags %v", pp.ExcludeFromLatest, v.Tags)
	}
	if v.Tags["imgpipe.source.digest"] == nil {
		t.Errorf("revoke dropped the version's other tags: %v", v.Tags)
	}

	// gc with the file's policy: without --yes only a plan; the file's
	// keep_within (1h) keeps everything until --older-than overrides it
	out = mustCLI(t, "gc", "-f", pipeline)
	if !strings.Contains(out, "keep 1 newest, older than 1h0m0s, grace 0") || strings.Contains(out, "Azure was not asked") || !strings.Contains(out, "nothing to do") {
		t.Fatalf("gc plan with the file's policy:\n%s", out)
	}
	var planJSON struct {
		Policy struct {
			KeepNewest     int               `json:"keep_newest"`
			ExcludeTags    map[string]string `json:"exclude_tags"`
			ExcludeRegions []string          `json:"exclude_regions"`
		} `json:"policy"`
	}
	out = mustCLI(t, "gc", "-f", pipeline, "-o", "json")
	if err := json.Unmarshal([]byte(out), &planJSON); err != nil || planJSON.Policy.KeepNewest != 1 ||
		fmt.Sprint(planJSON.Policy.ExcludeTags) != "map[pinned:]" || fmt.Sprint(planJSON.Policy.ExcludeRegions) != "[japaneast]" {
		t.Fatalf("gc policy from the file: %v %+v\n%s", err, planJSON.Policy, out)
	}
	out = mustCLI(t, "gc", "-f", pipeline, "--older-than", "0", "--yes")
	if !strings.Contains(out, "deprecate") || !strings.Contains(out, "app@1.0.0") {
		t.Fatalf("gc stage 1:\n%s", out)
	}
	v, err = versions.Get(ctx, "rg-gc", "gc_gallery", "app", "1.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if pp := v.Properties.PublishingProfile; pp.ExcludeFromLatest == nil || !*pp.ExcludeFromLatest || pp.EndOfLifeDate == nil {
		t.Errorf("1.0.0 after deprecation: excludeFromLatest %v, end of life %v", pp.ExcludeFromLatest, pp.EndOfLifeDate)
	}
	// grace 0: the next run deletes 1.0.0's copies, gallery version first
	out = mustCLI(t, "gc", "-f", pipeline, "--older-than", "0", "--yes")
	if !strings.Contains(out, "0 failed") {
		t.Fatalf("gc stage 2:\n%s", out)
	}
	ids := strings.ToLower(strings.Join(env.Server.ResourceIDs(""), "\n"))
	for _, gone := range []string{"versions/1.0.0", "images/app-1.0.0"} {
		if strings.Contains(ids, gone) {
			t.Errorf("%s still in Azure after gc:\n%s", gone, ids)
		}
	}
	for _, kept := range []string{"versions/1.0.2", "images/app-1.0.2"} {
		if !strings.Contains(ids, kept) {
			t.Errorf("%s (newest) was removed by gc", kept)
		}
	}
	out = mustCLI(t, "show", "app", "1.0.0", "-o", "json")
	if got := lineageSummary(t, out); !strings.Contains(got, "blob Deleted > managed_image Deleted > gallery_version Deleted") {
		t.Errorf("1.0.0 lineage after gc: %s", got)
	}
}

// TestPublishOnpremOnly publishes to an on-prem library with no azure block:
// the version is recorded with its artifact and library copy, the channel
// moves in the catalog and the library, a re-run changes nothing, and
// revoke marks the library copy.
func TestPublishOnpremOnly(t *testing.T) {
	dir := t.TempDir()
	cat := filepath.Join(dir, "catalog.db")
	lib := filepath.Join(dir, "library")
	variantDisk(t, filepath.Join(dir, "disk.raw"), "onprem")
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, []byte(`
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
onprem "lab" {
  library = "library"
  channel = "test"
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, when := range []string{"first", "second"} {
		out := mustCLI(t, "publish", "-f", pipeline, "--catalog", cat, "-o", "json")
		var res struct {
			Version string `json:"version"`
			Onprem  []struct {
				Existed, Promoted bool
			} `json:"onprem"`
		}
		if err := json.Unmarshal([]byte(out), &res); err != nil || res.Version != "1.0.0" || len(res.Onprem) != 1 || !res.Onprem[0].Promoted || res.Onprem[0].Existed != (when == "second") {
			t.Fatalf("%s publish: %v\n%s", when, err, out)
		}
	}
	out := mustCLI(t, "show", "app", "1.0.0", "--catalog", cat, "-o", "json")
	if got := lineageSummary(t, out); got != "artifact Present > onprem Present" {
		t.Errorf("lineage: %s", got)
	}
	if !strings.Contains(out, `"test"`) {
		t.Errorf("channel test not on 1.0.0:\n%s", out)
	}
	l, err := onprem.Open(lib)
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Pointer("app", "test")
	if err != nil || p.Version != "1.0.0" {
		t.Fatalf("library channel test: %+v %v", p, err)
	}
	md, err := l.Get("app", "1.0.0")
	if err != nil || md.Format != "vhdx" || md.Generation != "V1" {
		t.Fatalf("library metadata: %+v %v", md, err)
	}
	// an explicit newer version of other bits moves the channel forward
	variantDisk(t, filepath.Join(dir, "disk.raw"), "onprem2")
	mustCLI(t, "publish", "-f", pipeline, "--catalog", cat, "--version", "1.1.0")
	if p, err := l.Pointer("app", "test"); err != nil || p.Version != "1.1.0" {
		t.Fatalf("library channel test after 1.1.0: %+v %v", p, err)
	}
	out = mustCLI(t, "revoke", "app", "1.0.0", "--reason", "bad kernel", "--catalog", cat)
	if !strings.Contains(out, "done: mark-revoked-in-library onprem") {
		t.Fatalf("revoke:\n%s", out)
	}
	if md, err := l.Get("app", "1.0.0"); err != nil || !md.Revoked || md.RevokedReason != "bad kernel" {
		t.Fatalf("library after revoke: %+v %v", md, err)
	}

	// gc's delete step for the library copy goes through the library:
	// 1.1.0 (channel test) is refused, 1.0.0 is removed.
	c, err := catalog.Open(context.Background(), cat)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	onpremCopy := func(version string) *catalog.Copy {
		cps, err := c.Copies(context.Background(), catalog.Ref{Image: "app", Version: version})
		if err != nil {
			t.Fatal(err)
		}
		for i := range cps {
			if cps[i].Kind == catalog.KindOnprem {
				return &cps[i]
			}
		}
		t.Fatalf("no onprem copy of %s", version)
		return nil
	}
	if err := engine.DeleteLibraryCopy(onpremCopy("1.1.0")); err == nil || !strings.Contains(err.Error(), "channel test") {
		t.Fatalf("deleting channel test's version: %v", err)
	}
	if err := engine.DeleteLibraryCopy(onpremCopy("1.0.0")); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Get("app", "1.0.0"); !errors.Is(err, onprem.ErrNotFound) {
		t.Fatalf("1.0.0 still in the library: %v", err)
	}
	if err := engine.DeleteLibraryCopy(onpremCopy("1.0.0")); err != nil {
		t.Fatalf("deleting again: %v", err)
	}
}

// TestUploadDiskAgainstEmulator: upload --disk connects as publish does
// (custom ARM endpoint, CA bundle, client secret from the environment).
func TestUploadDiskAgainstEmulator(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	ctx := context.Background()
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rgs.CreateOrUpdate(ctx, "rg-up", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "disk.raw")
	variantDisk(t, src, "upload")
	if err := os.Truncate(src, 20<<20); err != nil { // Azure's smallest uploadable disk
		t.Fatal(err)
	}
	id := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/rg-up/providers/Microsoft.Compute/disks/up-os"
	out := mustCLI(t, "upload", src, "--disk", id, "--location", "westeurope", "-o", "json")
	var res struct {
		Target    string `json:"target"`
		BytesSent int64  `json:"bytes_sent"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.BytesSent == 0 {
		t.Fatalf("upload --disk: %v\n%s", err, out)
	}
	disks, err := armcompute.NewDisksClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	d, err := disks.Get(ctx, "rg-up", "up-os", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := d.Properties
	if p == nil || p.DiskState == nil || *p.DiskState != armcompute.DiskStateUnattached || p.HyperVGeneration == nil || *p.HyperVGeneration != armcompute.HyperVGenerationV1 {
		t.Fatalf("disk after upload: %+v", p)
	}
}
