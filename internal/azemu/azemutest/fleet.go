package azemutest

// Fixtures for rollout tests: a gallery definition with versions, scale
// sets and VMs made from them, all through the Azure SDK against the
// emulator (and its Azurite, for the managed image's source blob).

import (
	"bytes"
	"context"
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
)

// Fleet is a resource group in the emulator holding a gallery definition.
type Fleet struct {
	Env      *Env
	RG       string
	Location string
	DefID    string
	cf       *armcompute.ClientFactory
}

var fastPoll = &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}

// NewFleet makes resource group rg in westeurope with gallery g, definition
// web (Linux, Generation 1) and versions (each from one managed image made
// from a small page blob). The env must have Azurite (StartWithAzurite).
func NewFleet(t testing.TB, env *Env, rg string, versions ...string) *Fleet {
	t.Helper()
	if env.Azurite == nil {
		t.Fatal("azemutest.NewFleet needs StartWithAzurite")
	}
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	f := &Fleet{Env: env, RG: rg, Location: "westeurope"}
	var err error
	f.cf, err = armcompute.NewClientFactory(env.SubscriptionID, env.Credential(), env.ClientOptions())
	must(err)
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	must(err)
	_, err = rgs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr(f.Location)}, nil)
	must(err)
	container := strings.ToLower(strings.NewReplacer("_", "", ".", "", "-", "").Replace(rg))
	bc, err := azblob.NewClientFromConnectionString(env.Azurite.ConnectionString(), nil)
	must(err)
	_, err = bc.CreateContainer(ctx, container, nil)
	must(err)
	pb := bc.ServiceClient().NewContainerClient(container).NewPageBlobClient("os.vhd")
	_, err = pb.Create(ctx, 512, nil)
	must(err)
	_, err = pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(bytes.Repeat([]byte{7}, 512))), blob.HTTPRange{Offset: 0, Count: 512}, nil)
	must(err)
	ip, err := f.cf.NewImagesClient().BeginCreateOrUpdate(ctx, rg, "img", armcompute.Image{
		Location: to.Ptr(f.Location),
		Properties: &armcompute.ImageProperties{
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypesV1),
			StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
				OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
				BlobURI: to.Ptr(env.Azurite.BlobEndpoint + "/" + container + "/os.vhd"),
			}},
		},
	}, nil)
	must(err)
	img, err := ip.PollUntilDone(ctx, fastPoll)
	must(err)
	gp, err := f.cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, rg, "g", armcompute.Gallery{Location: to.Ptr(f.Location)}, nil)
	must(err)
	_, err = gp.PollUntilDone(ctx, fastPoll)
	must(err)
	dp, err := f.cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, rg, "g", "web", armcompute.GalleryImage{
		Location: to.Ptr(f.Location),
		Properties: &armcompute.GalleryImageProperties{
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV1),
			Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr(rg), SKU: to.Ptr("web")},
		},
	}, nil)
	must(err)
	def, err := dp.PollUntilDone(ctx, fastPoll)
	must(err)
	f.DefID = *def.ID
	for _, v := range versions {
		vp, err := f.cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, rg, "g", "web", v, armcompute.GalleryImageVersion{
			Location: to.Ptr(f.Location),
			Properties: &armcompute.GalleryImageVersionProperties{
				PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr(f.Location)}}},
				StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: img.ID}},
			},
		}, nil)
		must(err)
		_, err = vp.PollUntilDone(ctx, fastPoll)
		must(err)
	}
	return f
}

// VersionID is the id of version v of the fleet's definition.
func (f *Fleet) VersionID(v string) string { return f.DefID + "/versions/" + v }

// ScaleSet makes a scale set of n instances on imageID (a version or the
// definition id) with the upgrade mode and rolling policy given; it
// returns its id.
func (f *Fleet) ScaleSet(t testing.TB, name, imageID string, n int64, mode armcompute.UpgradeMode, pol *armcompute.RollingUpgradePolicy) string {
	t.Helper()
	p, err := f.cf.NewVirtualMachineScaleSetsClient().BeginCreateOrUpdate(context.Background(), f.RG, name, armcompute.VirtualMachineScaleSet{
		Location: to.Ptr(f.Location),
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
	r, err := p.PollUntilDone(context.Background(), fastPoll)
	if err != nil {
		t.Fatal(err)
	}
	return *r.ID
}

// VM makes a standalone VM on imageID; it returns its id.
func (f *Fleet) VM(t testing.TB, name, imageID string) string {
	t.Helper()
	p, err := f.cf.NewVirtualMachinesClient().BeginCreateOrUpdate(context.Background(), f.RG, name, armcompute.VirtualMachine{
		Location: to.Ptr(f.Location),
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)},
			StorageProfile:  &armcompute.StorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
		},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.PollUntilDone(context.Background(), fastPoll)
	if err != nil {
		t.Fatal(err)
	}
	return *r.ID
}

// DeleteVM removes a VM (a replacement's first half).
func (f *Fleet) DeleteVM(t testing.TB, name string) {
	t.Helper()
	p, err := f.cf.NewVirtualMachinesClient().BeginDelete(context.Background(), f.RG, name, nil)
	if err == nil {
		_, err = p.PollUntilDone(context.Background(), fastPoll)
	}
	if err != nil {
		t.Fatal(err)
	}
}
