package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
	"imgpipe/internal/config"
	"imgpipe/internal/promote"
)

// recordingStager stands in for Azure where a test's gallery versions are
// catalog rows only: it records each excludeFromLatest change.
type recordingStager struct {
	mu  sync.Mutex
	got map[string]bool // version id -> excludeFromLatest
}

func (r *recordingStager) SetExcludeFromLatest(_ context.Context, id string, exclude bool) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got[id] = exclude
	return nil
}

// fakeStaging makes promote stage through a recordingStager for the test.
func fakeStaging(t *testing.T) *recordingStager {
	t.Helper()
	r := &recordingStager{got: map[string]bool{}}
	real := stagerFor
	stagerFor = func(*config.File) promote.Stager { return r }
	t.Cleanup(func() { stagerFor = real })
	return r
}

// TestStagedUntilPromoted: a published gallery version is excluded from
// latest (in every region) until it is promoted to prod, so a VM or scale
// set that deploys the definition's latest only ever gets a promoted
// version; promote refuses an untested or failed version naming the failing
// check; revocation excludes it again. Against azemu through the CLI.
func TestStagedUntilPromoted(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	dir := cliEmulatorEnv(t, env)
	ctx := context.Background()
	cat := filepath.Join(dir, "catalog.db")
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, fmt.Appendf(nil, `
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
azure "emu" {
  subscription   = %q
  resource_group = "rg-stage"
  location       = "westeurope"
  storage {
    account        = %q
    resource_group = "azemu-storage"
    container      = "vhds"
    blob_endpoint  = %q
  }
  gallery    = "stage_gallery"
  definition = "app"
  version    = "next-patch"
  target_region "northeurope" {}
  replication_timeout = "1m"
}
`, env.SubscriptionID, env.Azurite.AccountName, env.Azurite.BlobEndpoint), 0o644); err != nil {
		t.Fatal(err)
	}
	cf, err := armcompute.NewClientFactory(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	versions, vms, sets := cf.NewGalleryImageVersionsClient(), cf.NewVirtualMachinesClient(), cf.NewVirtualMachineScaleSetsClient()
	excluded := func(v string) (version bool, regions []bool) {
		t.Helper()
		got, err := versions.Get(ctx, "rg-stage", "stage_gallery", "app", v, nil)
		if err != nil {
			t.Fatal(err)
		}
		pp := got.Properties.PublishingProfile
		for _, r := range pp.TargetRegions {
			regions = append(regions, r.ExcludeFromLatest != nil && *r.ExcludeFromLatest)
		}
		return pp.ExcludeFromLatest != nil && *pp.ExcludeFromLatest, regions
	}
	defID := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/rg-stage/providers/Microsoft.Compute/galleries/stage_gallery/images/app"
	poll := &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}
	// deployLatest creates a VM and a scale set from the definition (its
	// latest) and returns the versions Azure resolved them to.
	deployLatest := func(name string) (vm, ss string, err error) {
		t.Helper()
		vp, err := vms.BeginCreateOrUpdate(ctx, "rg-stage", "vm-"+name, armcompute.VirtualMachine{Location: to.Ptr("westeurope"), Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)},
			StorageProfile:  &armcompute.StorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(defID)}}}}, nil)
		if err != nil {
			return "", "", err
		}
		got, err := vp.PollUntilDone(ctx, poll)
		if err != nil {
			return "", "", err
		}
		sp, err := sets.BeginCreateOrUpdate(ctx, "rg-stage", "ss-"+name, armcompute.VirtualMachineScaleSet{Location: to.Ptr("northeurope"), Properties: &armcompute.VirtualMachineScaleSetProperties{
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{
				ImageReference: &armcompute.ImageReference{ID: to.Ptr(defID)}}}}}, nil)
		if err != nil {
			return "", "", err
		}
		gss, err := sp.PollUntilDone(ctx, poll)
		if err != nil {
			return "", "", err
		}
		return *got.Properties.StorageProfile.ImageReference.ExactVersion, *gss.Properties.VirtualMachineProfile.StorageProfile.ImageReference.ExactVersion, nil
	}

	variantDisk(t, filepath.Join(dir, "disk.raw"), "first")
	mustCLI(t, "publish", "-f", pipeline, "--yes")
	if v, r := excluded("1.0.0"); !v || fmt.Sprint(r) != "[true true]" {
		t.Fatalf("published 1.0.0: excludeFromLatest %v, regions %v; want staged everywhere", v, r)
	}
	if _, _, err := deployLatest("none"); err == nil || !strings.Contains(err.Error(), "exclude from latest") {
		t.Fatalf("latest of a definition with only a staged version: %v, want not found", err)
	}
	// untested: refused, still staged
	out, err := runCLI(t, "promote", "app", "1.0.0", "--to", "prod", "--by", "ann")
	if err == nil || !strings.Contains(err.Error(), "passing test of its artifact") {
		t.Fatalf("untested 1.0.0 promoted: %v\n%s", err, out)
	}
	if v, _ := excluded("1.0.0"); !v {
		t.Fatal("a refused promotion included 1.0.0 in latest")
	}
	catalogtest.TestedAt(t, cat, catalog.Ref{Image: "app", Version: "1.0.0"})
	out = mustCLI(t, "promote", "app", "1.0.0", "--to", "prod", "--by", "ann")
	if !strings.Contains(out, "in latest: "+defID+"/versions/1.0.0") {
		t.Fatalf("promote:\n%s", out)
	}
	if v, r := excluded("1.0.0"); v || fmt.Sprint(r) != "[false false]" {
		t.Fatalf("promoted 1.0.0: excludeFromLatest %v, regions %v; want in latest everywhere", v, r)
	}
	if vm, ss, err := deployLatest("a"); err != nil || vm != "1.0.0" || ss != "1.0.0" {
		t.Fatalf("latest after promotion: vm %q, scale set %q, %v; want 1.0.0", vm, ss, err)
	}
	// publishing again plans no change to the promoted version's place in latest
	if out := mustCLI(t, "plan", "-f", pipeline); strings.Contains(out, "exclude_from_latest") {
		t.Errorf("plan after promotion wants to change exclude_from_latest:\n%s", out)
	}

	// 1.0.1 is published staged; its test fails: refused naming the check
	variantDisk(t, filepath.Join(dir, "disk.raw"), "second")
	mustCLI(t, "publish", "-f", pipeline, "--yes")
	if v, _ := excluded("1.0.1"); !v {
		t.Fatal("published 1.0.1 is in latest")
	}
	c, err := catalog.Open(ctx, cat)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	_, err = c.AddTestRun(ctx, catalog.TestRun{Ref: catalog.Ref{Image: "app", Version: "1.0.1"}, Test: "smoke", Runner: "qemu-tcg", StartedAt: now, FinishedAt: now,
		Checks: []catalog.TestCheck{{Name: "boot", Passed: true}, {Name: "command:nginx", Output: "exit 1: nginx: not running"}}})
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, "promote", "app", "1.0.1", "--to", "prod")
	if err == nil || !strings.Contains(err.Error(), `test "smoke" failed its check command:nginx`) || !strings.Contains(err.Error(), "nginx: not running") {
		t.Fatalf("failed 1.0.1 promoted: %v\n%s", err, out)
	}
	if vm, ss, err := deployLatest("b"); err != nil || vm != "1.0.0" || ss != "1.0.0" {
		t.Fatalf("latest with 1.0.1 staged: vm %q, scale set %q, %v; want 1.0.0", vm, ss, err)
	}
	// the pipeline file may say prod needs no test: then 1.0.1 goes
	file2 := filepath.Join(dir, "untested.hcl")
	src, _ := os.ReadFile(pipeline)
	os.WriteFile(file2, append(src, "channel \"prod\" {\n  requires = [\"gallery_version:Succeeded\"]\n}\n"...), 0o644)
	out = mustCLI(t, "promote", "app", "1.0.1", "--to", "prod", "-f", file2, "-o", "json")
	if !strings.Contains(out, `"rules": "channel \"prod\" at `+file2+`:`) || !strings.Contains(out, `"included_in_latest"`) {
		t.Fatalf("promote with the file's channel block:\n%s", out)
	}
	if vm, _, err := deployLatest("c"); err != nil || vm != "1.0.1" {
		t.Fatalf("latest after promoting 1.0.1: %q %v", vm, err)
	}
	// revocation excludes it again: latest falls back to the promoted 1.0.0
	mustCLI(t, "revoke", "app", "1.0.1", "--reason", "CVE-2026-2")
	if v, _ := excluded("1.0.1"); !v {
		t.Fatal("revoked 1.0.1 is in latest")
	}
	if vm, ss, err := deployLatest("d"); err != nil || vm != "1.0.0" || ss != "1.0.0" {
		t.Fatalf("latest after revoking 1.0.1: vm %q, scale set %q, %v; want 1.0.0", vm, ss, err)
	}
}
