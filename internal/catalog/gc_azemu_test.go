package catalog_test

// The retention planner and runner against the ARM emulator (azemu) and
// Azurite, through the real Azure SDK: what VMs and scale sets reference is
// asked of "Azure", deprecation sets excludeFromLatest and an end of life on
// the gallery version, deletion removes gallery versions, managed images and
// blobs in dependency order. The Executor and InUseSource here are minimal
// test implementations of the catalog's interfaces; the production ones
// belong to internal/azure.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
)

var poll = &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}

type azureSide struct {
	images   *armcompute.ImagesClient
	versions *armcompute.GalleryImageVersionsClient
	vms      *armcompute.VirtualMachinesClient
	vmss     *armcompute.VirtualMachineScaleSetsClient
	blobs    *azblob.Client

	mu    sync.Mutex
	calls []string
}

// VersionsInUse lists every VM and scale set and reports its imageReference.
func (a *azureSide) VersionsInUse(ctx context.Context) ([]catalog.InUse, error) {
	var out []catalog.InUse
	vp := a.vms.NewListAllPager(nil)
	for vp.More() {
		page, err := vp.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, vm := range page.Value {
			if vm.Properties != nil && vm.Properties.StorageProfile != nil && vm.Properties.StorageProfile.ImageReference != nil && vm.Properties.StorageProfile.ImageReference.ID != nil {
				out = append(out, catalog.InUse{ResourceID: *vm.Properties.StorageProfile.ImageReference.ID, By: "vm " + *vm.Name})
			}
		}
	}
	sp := a.vmss.NewListAllPager(nil)
	for sp.More() {
		page, err := sp.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, ss := range page.Value {
			p := ss.Properties
			if p != nil && p.VirtualMachineProfile != nil && p.VirtualMachineProfile.StorageProfile != nil &&
				p.VirtualMachineProfile.StorageProfile.ImageReference != nil && p.VirtualMachineProfile.StorageProfile.ImageReference.ID != nil {
				out = append(out, catalog.InUse{ResourceID: *p.VirtualMachineProfile.StorageProfile.ImageReference.ID, By: "scale set " + *ss.Name})
			}
		}
	}
	return out, nil
}

func (a *azureSide) record(s string) {
	a.mu.Lock()
	a.calls = append(a.calls, s)
	a.mu.Unlock()
}

func (a *azureSide) Deprecate(ctx context.Context, s catalog.GCStep) error {
	id, err := arm.ParseResourceID(s.Copy.ResourceID)
	if err != nil {
		return err
	}
	a.record("deprecate " + s.Ref.String())
	gallery, def := id.Parent.Parent.Name, id.Parent.Name
	p, err := a.versions.BeginUpdate(ctx, id.ResourceGroupName, gallery, def, id.Name, armcompute.GalleryImageVersionUpdate{
		Properties: &armcompute.GalleryImageVersionProperties{PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{
			ExcludeFromLatest: to.Ptr(true), EndOfLifeDate: to.Ptr(s.EndOfLife)}},
	}, nil)
	if err != nil {
		return err
	}
	_, err = p.PollUntilDone(ctx, poll)
	return err
}

func notFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

func (a *azureSide) Delete(ctx context.Context, s catalog.GCStep) error {
	a.record("delete " + s.Ref.String() + " " + string(s.Copy.Kind))
	switch s.Copy.Kind {
	case catalog.KindBlob:
		_, err := a.blobs.ServiceClient().NewContainerClient("vhds").NewBlobClient(filepath.Base(s.Copy.ResourceID)).Delete(ctx, nil)
		if bloberror.HasCode(err, bloberror.BlobNotFound) {
			return nil
		}
		return err
	case catalog.KindManagedImage:
		id, err := arm.ParseResourceID(s.Copy.ResourceID)
		if err != nil {
			return err
		}
		p, err := a.images.BeginDelete(ctx, id.ResourceGroupName, id.Name, nil)
		if notFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(ctx, poll)
		return err
	case catalog.KindGalleryVersion:
		id, err := arm.ParseResourceID(s.Copy.ResourceID)
		if err != nil {
			return err
		}
		p, err := a.versions.BeginDelete(ctx, id.ResourceGroupName, id.Parent.Parent.Name, id.Parent.Name, id.Name, nil)
		if notFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		_, err = p.PollUntilDone(ctx, poll)
		return err
	}
	return fmt.Errorf("no deletion for %s copies in this test", s.Copy.Kind)
}

func TestGCAgainstAzemu(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Azurite and azemu")
	}
	env := azemutest.StartWithAzurite(t, azemu.Options{LRODelay: 50 * time.Millisecond, ReplicationDuration: 100 * time.Millisecond})
	ctx := context.Background()
	sub, cred, opts := env.SubscriptionID, env.Credential(), env.ClientOptions()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := armcompute.NewClientFactory(sub, cred, opts)
	must(err)
	rgs, err := armresources.NewResourceGroupsClient(sub, cred, opts)
	must(err)
	blobs, err := azblob.NewClientFromConnectionString(env.Azurite.ConnectionString(), nil)
	must(err)
	az := &azureSide{images: cf.NewImagesClient(), versions: cf.NewGalleryImageVersionsClient(), vms: cf.NewVirtualMachinesClient(),
		vmss: cf.NewVirtualMachineScaleSetsClient(), blobs: blobs}
	const rg, loc, gal, def = "imgpipe-gc", "westeurope", "gallery", "web"
	_, err = rgs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr(loc)}, nil)
	must(err)
	_, err = blobs.CreateContainer(ctx, "vhds", nil)
	must(err)
	gp, err := cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, rg, gal, armcompute.Gallery{Location: to.Ptr(loc)}, nil)
	must(err)
	_, err = gp.PollUntilDone(ctx, poll)
	must(err)
	dp, err := cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, rg, gal, def, armcompute.GalleryImage{Location: to.Ptr(loc),
		Properties: &armcompute.GalleryImageProperties{OSType: to.Ptr(armcompute.OperatingSystemTypesLinux),
			OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
			Identifier: &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("gc"), SKU: to.Ptr("web")}}}, nil)
	must(err)
	_, err = dp.PollUntilDone(ctx, poll)
	must(err)

	clk := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var clkMu sync.Mutex
	now := func() time.Time { clkMu.Lock(); defer clkMu.Unlock(); return clk }
	advance := func(d time.Duration) { clkMu.Lock(); clk = clk.Add(d); clkMu.Unlock() }
	c, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"), catalog.WithClock(now))
	must(err)
	defer c.Close()

	// Publish each version for real: page blob -> managed image -> gallery
	// version, recording every copy with the ids Azure returned.
	type published struct{ blob, image, version catalog.Copy }
	pub := map[string]published{}
	publish := func(ver, sourceImageOf string) {
		t.Helper()
		ref := catalog.Ref{Image: "web", Version: ver}
		_, err := c.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: ver, Provenance: catalog.Provenance{ArtifactSHA256: ver, HyperVGeneration: "V2"}})
		must(err)
		var p published
		srcID := ""
		if sourceImageOf == "" {
			name := "web-" + ver + ".vhd"
			pb := blobs.ServiceClient().NewContainerClient("vhds").NewPageBlobClient(name)
			data := bytes.Repeat([]byte(ver), 1024)[:4096]
			_, err = pb.Create(ctx, int64(len(data)), nil)
			must(err)
			_, err = pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(data)), blob.HTTPRange{Offset: 0, Count: int64(len(data))}, nil)
			must(err)
			p.blob, err = c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindBlob, Location: loc, ResourceID: env.Azurite.BlobEndpoint + "/vhds/" + name, State: catalog.StateSucceeded})
			must(err)
			ip, err := az.images.BeginCreateOrUpdate(ctx, rg, "web-"+ver, armcompute.Image{Location: to.Ptr(loc), Properties: &armcompute.ImageProperties{
				HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypesV2),
				StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{OSType: to.Ptr(armcompute.OperatingSystemTypesLinux),
					OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), BlobURI: to.Ptr(env.Azurite.BlobEndpoint + "/vhds/" + name)}}}}, nil)
			must(err)
			img, err := ip.PollUntilDone(ctx, poll)
			must(err)
			p.image, err = c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindManagedImage, Location: loc, ResourceID: *img.ID, State: catalog.StateSucceeded, ParentID: p.blob.ID})
			must(err)
			srcID = *img.ID
		} else {
			p.image = pub[sourceImageOf].image
			srcID = p.image.ResourceID
		}
		vp, err := az.versions.BeginCreateOrUpdate(ctx, rg, gal, def, ver, armcompute.GalleryImageVersion{Location: to.Ptr(loc),
			Properties: &armcompute.GalleryImageVersionProperties{
				PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr(loc), RegionalReplicaCount: to.Ptr[int32](1)}}},
				StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: to.Ptr(srcID)}}}}, nil)
		must(err)
		gv, err := vp.PollUntilDone(ctx, poll)
		must(err)
		p.version, err = c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindGalleryVersion, Location: loc, ResourceID: *gv.ID, State: catalog.StateSucceeded, ParentID: p.image.ID})
		must(err)
		pub[ver] = p
	}
	publish("1.0.0", "")      // a VM runs its gallery version
	publish("1.0.5", "")      // a scale set runs its managed image
	publish("1.1.0", "")      // goes entirely
	publish("1.2.0", "")      // goes, but its managed image is 1.3.0's source
	publish("1.3.0", "1.2.0") // channel prod
	publish("1.4.0", "")      // the newest
	catalogtest.Tested(t, c, catalog.Ref{Image: "web", Version: "1.3.0"})
	_, err = c.Promote(ctx, catalog.PromoteRequest{Ref: catalog.Ref{Image: "web", Version: "1.3.0"}, Channel: "prod", By: "ann"})
	must(err)
	vmp, err := az.vms.BeginCreateOrUpdate(ctx, rg, "vm-1", armcompute.VirtualMachine{Location: to.Ptr(loc), Properties: &armcompute.VirtualMachineProperties{
		HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)},
		StorageProfile:  &armcompute.StorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(pub["1.0.0"].version.ResourceID)}}}}, nil)
	must(err)
	_, err = vmp.PollUntilDone(ctx, poll)
	must(err)
	ssp, err := az.vmss.BeginCreateOrUpdate(ctx, rg, "ss-1", armcompute.VirtualMachineScaleSet{Location: to.Ptr(loc), Properties: &armcompute.VirtualMachineScaleSetProperties{
		VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{
			ImageReference: &armcompute.ImageReference{ID: to.Ptr(pub["1.0.5"].image.ResourceID)}}}}}, nil)
	must(err)
	_, err = ssp.PollUntilDone(ctx, poll)
	must(err)

	policy := catalog.Policy{KeepNewest: 1, OlderThan: 30 * 24 * time.Hour, Grace: 7 * 24 * time.Hour}
	advance(60 * 24 * time.Hour)

	// Stage 1: deprecate 1.2.0 and 1.1.0 in Azure.
	plan, res, err := c.RunGC(ctx, policy, az, az, "gc")
	must(err)
	if fmt.Sprint(az.calls) != "[deprecate web@1.2.0 deprecate web@1.1.0]" {
		t.Fatalf("stage 1 calls %q; kept %+v", az.calls, plan.Kept)
	}
	if len(res.Done) != 2 {
		t.Errorf("stage 1 result: %+v", res)
	}
	for _, ver := range []string{"1.1.0", "1.2.0"} {
		got, err := az.versions.Get(ctx, rg, gal, def, ver, nil)
		must(err)
		pp := got.Properties.PublishingProfile
		if pp.ExcludeFromLatest == nil || !*pp.ExcludeFromLatest || pp.EndOfLifeDate == nil || !pp.EndOfLifeDate.Equal(now().Add(policy.Grace)) {
			t.Errorf("%s in Azure after deprecation: excludeFromLatest %v, end of life %v", ver, pp.ExcludeFromLatest, pp.EndOfLifeDate)
		}
	}
	got, err := az.versions.Get(ctx, rg, gal, def, "1.0.0", nil)
	must(err)
	if pp := got.Properties.PublishingProfile; pp.ExcludeFromLatest != nil && *pp.ExcludeFromLatest {
		t.Errorf("1.0.0 (in use) was excluded from latest")
	}
	kept := map[string]string{}
	for _, k := range plan.Kept {
		kept[k.Ref.Version] = strings.Join(k.Reasons, "; ")
	}
	for ver, why := range map[string]string{"1.0.0": "in use by vm vm-1", "1.0.5": "in use by scale set ss-1", "1.3.0": "version of channel prod", "1.4.0": "among the 1 newest"} {
		if !strings.Contains(kept[ver], why) {
			t.Errorf("kept %s: %q, want %q", ver, kept[ver], why)
		}
	}

	// Stage 2, after the grace period: delete in dependency order, keeping
	// 1.2.0's managed image (1.3.0's gallery version was made from it).
	advance(8 * 24 * time.Hour)
	az.calls = nil
	_, _, err = c.RunGC(ctx, policy, az, az, "gc")
	must(err)
	want := "[delete web@1.2.0 gallery_version delete web@1.1.0 gallery_version delete web@1.1.0 managed_image delete web@1.2.0 blob delete web@1.1.0 blob]"
	if fmt.Sprint(az.calls) != want {
		t.Errorf("stage 2 calls:\n got %q\nwant %s", az.calls, want)
	}
	for _, ver := range []string{"1.1.0", "1.2.0"} {
		if _, err := az.versions.Get(ctx, rg, gal, def, ver, nil); !notFound(err) {
			t.Errorf("gallery version %s still in Azure: %v", ver, err)
		}
		if _, err := blobs.ServiceClient().NewContainerClient("vhds").NewBlobClient("web-"+ver+".vhd").GetProperties(ctx, nil); !bloberror.HasCode(err, bloberror.BlobNotFound) {
			t.Errorf("blob of %s still in storage: %v", ver, err)
		}
	}
	if _, err := az.images.Get(ctx, rg, "web-1.1.0", nil); !notFound(err) {
		t.Errorf("managed image of 1.1.0 still in Azure: %v", err)
	}
	if _, err := az.images.Get(ctx, rg, "web-1.2.0", nil); err != nil {
		t.Errorf("managed image of 1.2.0 (source of 1.3.0) was removed: %v", err)
	}
	for _, ver := range []string{"1.0.0", "1.0.5", "1.3.0", "1.4.0"} {
		if _, err := az.versions.Get(ctx, rg, gal, def, ver, nil); err != nil {
			t.Errorf("kept gallery version %s: %v", ver, err)
		}
	}
	v110, err := c.Version(ctx, catalog.Ref{Image: "web", Version: "1.1.0"})
	must(err)
	v120, err := c.Version(ctx, catalog.Ref{Image: "web", Version: "1.2.0"})
	must(err)
	if v110.Status != catalog.StatusDeleted || v120.Status != catalog.StatusDeprecated {
		t.Errorf("catalog after deletion: 1.1.0 %s (want deleted), 1.2.0 %s (want deprecated: its managed image remains)", v110.Status, v120.Status)
	}
	// A third run has nothing left to do.
	az.calls = nil
	plan, _, err = c.RunGC(ctx, policy, az, az, "gc")
	must(err)
	if len(az.calls) != 0 || len(plan.Steps) != 0 {
		t.Errorf("third run: calls %q steps %+v", az.calls, plan.Steps)
	}
}
