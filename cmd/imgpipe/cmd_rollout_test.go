package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/onprem"
)

// TestRolloutVerbAgainstEmulator rolls an azemu scale set through
// `imgpipe rollout start` and reads the record back with `rollout status`;
// an unhealthy version stops the rollout, exit 1, recorded as failed.
func TestRolloutVerbAgainstEmulator(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{LRODelay: 300 * time.Millisecond, RetryAfter: 100 * time.Millisecond, ReplicationDuration: 200 * time.Millisecond})
	dir := cliEmulatorEnv(t, env)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	poll := &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}
	cred, opts := env.Credential(), env.ClientOptions()
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, cred, opts)
	must(err)
	_, err = rgs.CreateOrUpdate(ctx, "rg", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
	must(err)
	cf, err := armcompute.NewClientFactory(env.SubscriptionID, cred, opts)
	must(err)
	bc, err := azblob.NewClientFromConnectionString(env.Azurite.ConnectionString(), nil)
	must(err)
	_, err = bc.CreateContainer(ctx, "rollout", nil)
	must(err)
	pb := bc.ServiceClient().NewContainerClient("rollout").NewPageBlobClient("os.vhd")
	_, err = pb.Create(ctx, 512, nil)
	must(err)
	_, err = pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(bytes.Repeat([]byte{1}, 512))), blob.HTTPRange{Offset: 0, Count: 512}, nil)
	must(err)
	ip, err := cf.NewImagesClient().BeginCreateOrUpdate(ctx, "rg", "img", armcompute.Image{Location: to.Ptr("westeurope"), Properties: &armcompute.ImageProperties{
		HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypesV1),
		StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{OSType: to.Ptr(armcompute.OperatingSystemTypesLinux),
			OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), BlobURI: to.Ptr(env.Azurite.BlobEndpoint + "/rollout/os.vhd")}},
	}}, nil)
	must(err)
	img, err := ip.PollUntilDone(ctx, poll)
	must(err)
	gp, err := cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, "rg", "g", armcompute.Gallery{Location: to.Ptr("westeurope")}, nil)
	must(err)
	_, err = gp.PollUntilDone(ctx, poll)
	must(err)
	dp, err := cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, "rg", "g", "web", armcompute.GalleryImage{Location: to.Ptr("westeurope"), Properties: &armcompute.GalleryImageProperties{
		OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV1),
		Identifier: &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("cli"), SKU: to.Ptr("web")},
	}}, nil)
	must(err)
	def, err := dp.PollUntilDone(ctx, poll)
	must(err)
	cat, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	must(err)
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		vp, err := cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, "rg", "g", "web", v, armcompute.GalleryImageVersion{Location: to.Ptr("westeurope"), Properties: &armcompute.GalleryImageVersionProperties{
			PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr("westeurope")}}},
			StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: img.ID}},
		}}, nil)
		must(err)
		_, err = vp.PollUntilDone(ctx, poll)
		must(err)
		_, err = cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v})
		must(err)
	}
	cat.Close()
	sp, err := cf.NewVirtualMachineScaleSetsClient().BeginCreateOrUpdate(ctx, "rg", "web", armcompute.VirtualMachineScaleSet{
		Location: to.Ptr("westeurope"), SKU: &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr[int64](4)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(armcompute.UpgradeModeRolling), RollingUpgradePolicy: &armcompute.RollingUpgradePolicy{
				MaxBatchInstancePercent: to.Ptr[int32](50), MaxUnhealthyInstancePercent: to.Ptr[int32](50)}},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{
				ImageReference: &armcompute.ImageReference{ID: to.Ptr(*def.ID + "/versions/1.0.0")}}},
		},
	}, nil)
	must(err)
	ss, err := sp.PollUntilDone(ctx, poll)
	must(err)

	out, err := runCLI(t, "rollout", "start", "web", *def.ID+"/versions/2.0.0", "--scale-set", *ss.ID, "--poll", "100ms", "-o", "json")
	if err != nil {
		t.Fatalf("rollout start: %v\n%s", err, out)
	}
	var res catalog.Rollout
	if err := json.Unmarshal([]byte(out[strings.Index(out, "{"):]), &res); err != nil {
		t.Fatalf("rollout start -o json: %v\n%s", err, out)
	}
	if res.ID != 1 || res.State != catalog.RolloutCompleted || len(res.Members) != 4 || res.Members[3].Version != "2.0.0" || res.Targets[0].Mode != "Rolling" {
		t.Fatalf("rollout result %+v", res)
	}
	// the scale set's own policy (50% of 4) made batches of 2
	if res.Targets[0].Batch != 2 {
		t.Fatalf("%d batches, want 2: %+v", res.Targets[0].Batch, res.Targets[0])
	}
	if out, err = runCLI(t, "rollout", "rollback", "1"); err == nil || !strings.Contains(err.Error(), "no previous version") {
		t.Fatalf("rollout rollback without a previous version: %v\n%s", err, out)
	}
	out, err = runCLI(t, "rollout", "status", "--id", "1", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var r catalog.Rollout
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if r.State != catalog.RolloutCompleted || len(r.Members) != 4 || r.Members[0].Version != "2.0.0" || r.Members[0].State != "upgraded" || r.Steps < 2 {
		t.Fatalf("recorded rollout %+v", r)
	}

	// an unhealthy version: exit 1, the error names it, the rollout paused
	env.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
	out, err = runCLI(t, "rollout", "start", "web", *def.ID+"/versions/3.0.0", "--scale-set", *ss.ID, "--previous", "2.0.0", "--poll", "100ms")
	if err == nil || exitStatus(err) != 1 || !strings.Contains(err.Error(), "unhealthy") || !strings.Contains(err.Error(), "3.0.0") {
		t.Fatalf("rollout to an unhealthy version: %v\n%s", err, out)
	}
	if !strings.Contains(out, "step 1: started") || !strings.Contains(out, "paused web") {
		t.Fatalf("progress lines:\n%s", out)
	}
	out, err = runCLI(t, "rollout", "status", "web")
	if err != nil || !strings.Contains(out, "paused") || !strings.Contains(out, "completed") || !strings.Contains(out, "0/4") {
		t.Fatalf("rollout status: %v\n%s", err, out)
	}
	out, err = runCLI(t, "rollout", "status", "--id", "2")
	if err != nil || strings.Count(out, "unhealthy") < 2 || !strings.Contains(out, "pending") {
		t.Fatalf("rollout status --id 2: %v\n%s", err, out)
	}
	// roll it back: every instance on 2.0.0 again, the paused rollout rolled back
	out, err = runCLI(t, "rollout", "rollback", "2", "--poll", "100ms")
	if err != nil || !strings.Contains(out, "rollback of rollout 2") || !strings.Contains(out, ": completed") {
		t.Fatalf("rollout rollback: %v\n%s", err, out)
	}
	out, err = runCLI(t, "rollout", "status", "--id", "2")
	if err != nil || !strings.Contains(out, "rolled_back") {
		t.Fatalf("rolled back rollout: %v\n%s", err, out)
	}
	out, err = runCLI(t, "rollout", "status", "--id", "3", "-o", "json")
	if err := json.Unmarshal([]byte(out), &r); err != nil || r.RollbackOf != 2 || r.State != catalog.RolloutCompleted || r.Members[0].Version != "2.0.0" || r.Members[3].Version != "2.0.0" {
		t.Fatalf("rollback rollout %v %+v", err, r)
	}
}

// TestRolloutHostsVerb: the file's rollout block names on-prem hosts; start
// gives each host on an older version its replacement script, scripts
// writes them, and advance completes the rollout once the agents report.
func TestRolloutHostsVerb(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	catLoc := filepath.Join(dir, "catalog.db")
	lib, err := onprem.Open(filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(ctx, catLoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		data := bytes.Repeat([]byte(v), 512)
		if _, err := lib.Add(ctx, onprem.AddOptions{Image: "web", Version: v, Source: bytes.NewReader(data), Size: int64(len(data)), Format: "vhdx", VirtualSize: 1 << 20, Generation: "V2", OS: "linux"}); err != nil {
			t.Fatal(err)
		}
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []string{"hv-a", "hv-b"} {
		if err := cat.ReportHost(ctx, catalog.Host{Name: h, Platform: catalog.PlatformOnprem, Image: "web", Version: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	cat.Close()
	pf := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pf, []byte(`
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
onprem "lab" {
  library = "lib"
}
rollout {
  hosts {
    channel = "prod"
    switch  = "LAN"
  }
}
`), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := runCLI(t, "rollout", "start", "web", "2.0.0", "-f", pf, "--catalog", catLoc, "--previous", "1.0.0")
	if err != nil || !strings.Contains(out, "rollout 1: web 2.0.0 to hosts:prod@lab: running") || strings.Count(out, "replace  true") != 2 {
		t.Fatalf("rollout start: %v\n%s", err, out)
	}
	scripts := filepath.Join(dir, "scripts")
	if out, err = runCLI(t, "rollout", "scripts", "1", "--dir", scripts, "--catalog", catLoc); err != nil {
		t.Fatalf("rollout scripts: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(scripts, "hv-a.ps1"))
	if err != nil || !strings.Contains(string(b), "$OldName  = 'hv-a'") || !strings.Contains(string(b), "-SwitchName 'LAN'") {
		t.Fatalf("hv-a.ps1: %v\n%s", err, b)
	}
	cat, err = catalog.Open(ctx, catLoc)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"hv-a", "hv-b"} {
		if err := cat.ReportHost(ctx, catalog.Host{Name: h, Platform: catalog.PlatformOnprem, Image: "web", Version: "2.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	cat.Close()
	out, err = runCLI(t, "rollout", "advance", "1", "--catalog", catLoc, "-o", "json")
	var r catalog.Rollout
	if err != nil || json.Unmarshal([]byte(out), &r) != nil || r.State != catalog.RolloutCompleted || len(r.Members) != 2 {
		t.Fatalf("rollout advance: %v\n%s", err, out)
	}
}
