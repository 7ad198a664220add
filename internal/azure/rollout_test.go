package azure

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
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
)

// rolloutEnv is azemu with a gallery definition holding versions 1.0.0..3.0.0
// and a resource group for scale sets.
type rolloutEnv struct {
	env   *azemutest.Env
	c     *Clients
	cf    *armcompute.ClientFactory
	rg    string
	defID string
}

func (e *rolloutEnv) versionID(v string) string { return e.defID + "/versions/" + v }

func newRolloutEnv(t *testing.T) *rolloutEnv {
	t.Helper()
	env := azemutest.StartWithAzurite(t, azemu.Options{LRODelay: 400 * time.Millisecond, RetryAfter: 100 * time.Millisecond, ReplicationDuration: 300 * time.Millisecond})
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	poll := &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}
	e := &rolloutEnv{env: env, rg: "rollout"}
	var err error
	e.c, err = NewClients(env.SubscriptionID, env.Credential(), env.ClientOptions())
	must(err)
	e.cf, err = armcompute.NewClientFactory(env.SubscriptionID, env.Credential(), env.ClientOptions())
	must(err)
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	must(err)
	_, err = rgs.CreateOrUpdate(ctx, e.rg, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil)
	must(err)

	bc, err := azblob.NewClientFromConnectionString(env.Azurite.ConnectionString(), nil)
	must(err)
	_, err = bc.CreateContainer(ctx, "rollout", nil)
	must(err)
	pb := bc.ServiceClient().NewContainerClient("rollout").NewPageBlobClient("os.vhd")
	_, err = pb.Create(ctx, 512, nil)
	must(err)
	_, err = pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(bytes.Repeat([]byte{7}, 512))), blob.HTTPRange{Offset: 0, Count: 512}, nil)
	must(err)

	ip, err := e.cf.NewImagesClient().BeginCreateOrUpdate(ctx, e.rg, "img", armcompute.Image{
		Location: to.Ptr("westeurope"),
		Properties: &armcompute.ImageProperties{
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypesV1),
			StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
				OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
				BlobURI: to.Ptr(env.Azurite.BlobEndpoint + "/rollout/os.vhd"),
			}},
		},
	}, nil)
	must(err)
	img, err := ip.PollUntilDone(ctx, poll)
	must(err)
	gp, err := e.cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, e.rg, "g", armcompute.Gallery{Location: to.Ptr("westeurope")}, nil)
	must(err)
	_, err = gp.PollUntilDone(ctx, poll)
	must(err)
	dp, err := e.cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, e.rg, "g", "web", armcompute.GalleryImage{
		Location: to.Ptr("westeurope"),
		Properties: &armcompute.GalleryImageProperties{
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV1),
			Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("rollout"), SKU: to.Ptr("web")},
		},
	}, nil)
	must(err)
	def, err := dp.PollUntilDone(ctx, poll)
	must(err)
	e.defID = *def.ID
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		vp, err := e.cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, e.rg, "g", "web", v, armcompute.GalleryImageVersion{
			Location: to.Ptr("westeurope"),
			Properties: &armcompute.GalleryImageVersionProperties{
				PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr("westeurope")}}},
				StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: img.ID}},
			},
		}, nil)
		must(err)
		_, err = vp.PollUntilDone(ctx, poll)
		must(err)
	}
	return e
}

// scaleSet creates a scale set of n instances on imageID; it returns its id.
func (e *rolloutEnv) scaleSet(t *testing.T, name, imageID string, n int64, mode armcompute.UpgradeMode, pol *armcompute.RollingUpgradePolicy) string {
	t.Helper()
	p, err := e.cf.NewVirtualMachineScaleSetsClient().BeginCreateOrUpdate(context.Background(), e.rg, name, armcompute.VirtualMachineScaleSet{
		Location: to.Ptr("westeurope"),
		SKU:      &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr(n)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(mode), RollingUpgradePolicy: pol},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
			},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.PollUntilDone(context.Background(), &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return *r.ID
}

// recorder keeps every progress report.
type recorder struct {
	mu  sync.Mutex
	got []RolloutProgress
}

func (r *recorder) report(p RolloutProgress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, p)
}

// onTarget counts, per report, the instances on version v.
func (r *recorder) onTarget(v string) []int {
	var out []int
	for _, p := range r.got {
		n := 0
		for _, in := range p.Instances {
			if in.ExactVersion == v {
				n++
			}
		}
		out = append(out, n)
	}
	return out
}

func TestRollScaleSet(t *testing.T) {
	e := newRolloutEnv(t)
	ctx := context.Background()
	half := &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](25), MaxUnhealthyInstancePercent: to.Ptr[int32](50), PauseTimeBetweenBatches: to.Ptr("PT0.3S")}

	t.Run("RollingInBatches", func(t *testing.T) {
		id := e.scaleSet(t, "web", e.versionID("1.0.0"), 4, armcompute.UpgradeModeRolling, half)
		var rec recorder
		res, err := RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.versionID("2.0.0"), PollInterval: 50 * time.Millisecond}, rec.report)
		if err != nil {
			t.Fatal(err)
		}
		if !res.ModelUpdated || res.Mode != "Rolling" || res.Status != "Completed" || len(res.Instances) != 4 {
			t.Fatalf("result %+v", res)
		}
		for _, in := range res.Instances {
			if in.ExactVersion != "2.0.0" || in.State != InstanceUpgraded || !in.LatestModel {
				t.Fatalf("instance after rollout: %+v", in)
			}
		}
		// batches of 1 (25% of 4): the reports saw the instances move one batch at a time
		counts := rec.onTarget("2.0.0")
		for _, want := range []int{0, 1, 2, 3, 4} {
			if !containsInt(counts, want) {
				t.Fatalf("reports never showed %d of 4 instances on 2.0.0: %v", want, counts)
			}
		}
		for i := 1; i < len(counts); i++ {
			if counts[i] < counts[i-1] {
				t.Fatalf("instances went back: %v", counts)
			}
		}
		if last := rec.got[len(rec.got)-1]; last.Batch != 4 || last.Successful != 4 {
			t.Fatalf("last report %+v, want 4 batches, 4 successful", last)
		}
	})

	t.Run("LatestFromDefinition", func(t *testing.T) {
		id := e.scaleSet(t, "lat", e.defID, 2, armcompute.UpgradeModeRolling, &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](50), MaxUnhealthyInstancePercent: to.Ptr[int32](50)})
		// instances were made on latest = 3.0.0; rolling "to 3.0.0" changes nothing in the model
		res, err := RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.versionID("3.0.0"), PollInterval: 50 * time.Millisecond}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if res.ModelUpdated {
			t.Fatal("a model on the definition was rewritten")
		}
		// asking for 2.0.0 while latest is 3.0.0 is an error that says why
		_, err = RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.versionID("2.0.0"), PollInterval: 50 * time.Millisecond}, nil)
		if err == nil || !strings.Contains(err.Error(), "latest must resolve to 2.0.0") {
			t.Fatalf("rollout to a version that is not latest: %v", err)
		}
	})

	t.Run("UnhealthyBatchStops", func(t *testing.T) {
		e.env.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
		defer e.env.Server.SetFaults(azemu.Faults{})
		id := e.scaleSet(t, "bad", e.versionID("2.0.0"), 4, armcompute.UpgradeModeRolling, half)
		var rec recorder
		res, err := RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.versionID("3.0.0"), PollInterval: 50 * time.Millisecond}, rec.report)
		if !errors.Is(err, ErrRolloutUnhealthy) {
			t.Fatalf("rollout to an unhealthy version: %v", err)
		}
		if !strings.Contains(err.Error(), "bad") || !strings.Contains(err.Error(), "3.0.0") {
			t.Fatalf("error does not name the scale set and version: %v", err)
		}
		if res == nil || res.Status != "Faulted" {
			t.Fatalf("result %+v", res)
		}
		bad, old := 0, 0
		for _, in := range res.Instances {
			switch {
			case in.State == InstanceUnhealthy && in.ExactVersion == "3.0.0":
				bad++
			case in.State == InstancePending && in.ExactVersion == "2.0.0":
				old++
			default:
				t.Fatalf("instance %+v", in)
			}
		}
		if bad != 1 || old != 3 {
			t.Fatalf("%d unhealthy on 3.0.0, %d left on 2.0.0; want 1 and 3 (the first batch stops it)", bad, old)
		}
	})

	t.Run("ManualModeBatches", func(t *testing.T) {
		id := e.scaleSet(t, "man", e.versionID("1.0.0"), 3, armcompute.UpgradeModeManual, &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](34)})
		var rec recorder
		res, err := RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.versionID("2.0.0"), PollInterval: 50 * time.Millisecond}, rec.report)
		if err != nil {
			t.Fatal(err)
		}
		if res.Mode != "Manual" || res.Status != "Completed" {
			t.Fatalf("result %+v", res)
		}
		counts := rec.onTarget("2.0.0")
		for _, want := range []int{0, 1, 2, 3} {
			if !containsInt(counts, want) {
				t.Fatalf("manual batches of 1: reports %v", counts)
			}
		}
		// an unhealthy version stops the manual rollout after its first batch
		e.env.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
		defer e.env.Server.SetFaults(azemu.Faults{})
		res, err = RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.versionID("3.0.0"), PollInterval: 50 * time.Millisecond}, nil)
		if !errors.Is(err, ErrRolloutUnhealthy) || res.Status != "Faulted" {
			t.Fatalf("manual rollout to an unhealthy version: %v %+v", err, res)
		}
		n := 0
		for _, in := range res.Instances {
			if in.ExactVersion == "3.0.0" {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d instances on the unhealthy version, want 1", n)
		}
	})

	t.Run("BadInput", func(t *testing.T) {
		if _, err := RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: "/subscriptions/x/nope", VersionID: e.versionID("2.0.0")}, nil); err == nil || !strings.Contains(err.Error(), "not a scale set id") {
			t.Fatalf("bad scale set id: %v", err)
		}
		id := "/subscriptions/" + e.env.SubscriptionID + "/resourceGroups/" + e.rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
		if _, err := RollScaleSet(ctx, e.c, ScaleSetRollout{ScaleSetID: id, VersionID: e.defID}, nil); err == nil || !strings.Contains(err.Error(), "not a gallery image version") {
			t.Fatalf("definition as version: %v", err)
		}
	})
}

func containsInt(xs []int, v int) bool {
	for _, x := range xs {
		if x == v {
			return true
		}
	}
	return false
}
