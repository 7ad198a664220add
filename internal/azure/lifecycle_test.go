package azure

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azemu"
	"imgpipe/internal/config"
)

// publishTwo publishes 1.0.0 and 1.0.1 (two disks) into gal/web and a
// second definition gal/other with 1.0.0.
func publishTwo(t *testing.T, e *testEnv) (*Desired, *Desired, *Desired) {
	t.Helper()
	ctx := context.Background()
	d1 := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", ""))
	d2 := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 2), "", ""))
	d2.Azure.Version = "1.0.1"
	d3 := e.desired(t, e.pipeline(t, d1.Source.Path, "", ""))
	d3.Azure.Definition = "other"
	for _, d := range []*Desired{d1, d2, d3} {
		if _, err := e.pub.Publish(ctx, d); err != nil {
			t.Fatalf("publish %s %s: %v", d.Azure.Definition, d.Azure.Version, err)
		}
	}
	return d1, d2, d3
}

func testDestroyGalleryInOrderWhileOutOfOrderFails(t *testing.T, e *testEnv) {
	ctx := context.Background()
	d1, d2, _ := publishTwo(t, e)
	gal := d1.id("").GalleryID()

	// Terraform-style: delete the gallery first. Azure (and azemu) refuse.
	var apiErr error
	poller, err := e.pub.Clients.Galleries.BeginDelete(ctx, e.rg, galleryFor(e.rg), nil)
	if err == nil {
		_, err = poller.PollUntilDone(ctx, e.pub.pollOpts())
	}
	apiErr = err
	var re *azcore.ResponseError
	if !errors.As(apiErr, &re) || re.StatusCode != 409 || re.ErrorCode != "CannotDeleteResource" {
		t.Fatalf("out-of-order gallery delete: %v", apiErr)
	}
	shown := Explain(apiErr)
	t.Logf("out-of-order delete, as imgpipe shows it:\n%s", shown)
	if !strings.Contains(shown, "CannotDeleteResource (HTTP 409)") || !strings.Contains(shown, "imgpipe destroy") {
		t.Fatalf("rendering:\n%s", shown)
	}
	if !e.emu.Server.Exists(gal) {
		t.Fatal("gallery vanished after a refused delete")
	}

	// A VM uses 1.0.1: destroy keeps it (and its parents) without --force.
	vms, err := armcompute.NewVirtualMachinesClient(e.sub, e.emu.Credential(), e.emu.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	vmPoller, err := vms.BeginCreateOrUpdate(ctx, e.rg, "vm1", armcompute.VirtualMachine{
		Location: to.Ptr("westeurope"),
		Properties: &armcompute.VirtualMachineProperties{StorageProfile: &armcompute.StorageProfile{
			ImageReference: &armcompute.ImageReference{ID: to.Ptr(d2.id("1.0.1").String())}}},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vmPoller.PollUntilDone(ctx, e.pub.pollOpts()); err != nil {
		t.Fatal(err)
	}
	gid, _ := ParseResourceID(gal)
	dp, err := e.pub.PlanDestroy(ctx, gid, false)
	if err != nil {
		t.Fatal(err)
	}
	text := dp.Text()
	if !strings.Contains(text, "still used by VM") || !strings.Contains(text, "= keep   gallery") {
		t.Fatalf("plan without --force:\n%s", text)
	}
	if err := e.pub.Destroy(ctx, dp); err != nil {
		t.Fatalf("partial destroy: %v", err)
	}
	if !e.emu.Server.Exists(d2.id("1.0.1").String()) || e.emu.Server.Exists(d1.id("1.0.0").String()) {
		t.Fatal("wrong versions removed")
	}
	// its managed image stays (the kept version may need it to replicate), the other's went
	if !e.emu.Server.Exists(ResourceID{Subscription: e.sub, ResourceGroup: e.rg, Image: "web-1.0.1"}.String()) ||
		e.emu.Server.Exists(ResourceID{Subscription: e.sub, ResourceGroup: e.rg, Image: "web-1.0.0"}.String()) {
		t.Fatalf("sources: %v", e.resources())
	}

	// --force: everything, in order, each delete awaited, despite ARM's lag.
	dp, err = e.pub.PlanDestroy(ctx, gid, true)
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, s := range dp.Steps {
		if s.Action == ActDelete {
			order = append(order, string(s.Kind))
		}
	}
	if i, j := slices.Index(order, "version"), slices.Index(order, "definition"); i < 0 || j < i || order[len(order)-1] != "gallery" {
		t.Fatalf("order %v", order)
	}
	if err := e.pub.Destroy(ctx, dp); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	for _, id := range e.rgResources(e.rg) {
		if strings.Contains(id, "/galleries/") || strings.Contains(id, "/images/web-") {
			t.Errorf("left behind: %s", id)
		}
	}
	if b, _ := e.pub.Blobs.Stat(ctx, d1.blobURL("1.0.0")); b != nil {
		t.Error("blob of 1.0.0 left behind")
	}
}

func testReplicateChecksTheSource(t *testing.T, e *testEnv) {
	base := e.rg
	for _, policy := range []string{azemu.ReplicaPolicyStrict, azemu.ReplicaPolicyCurrent} {
		t.Run(policy, func(t *testing.T) {
			e.rg = base + "-" + policy
			saved := *e.pub
			defer func() { *e.pub = saved }()
			if err := e.emu.Server.SetReplicaPolicy(policy); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", ""))
			if _, err := e.pub.Publish(ctx, d); err != nil {
				t.Fatal(err)
			}
			vid := d.id("1.0.0")
			imgName := d.imageName("1.0.0")
			add := []config.TargetRegion{{Name: "japaneast", Replicas: 1, StorageAccountType: "Standard_LRS"}}

			// Replace the managed image with one made from another blob.
			other := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 9), "", ""))
			other.Azure.Version = "9.9.9"
			otherURL := other.blobURL("9.9.9")
			if _, err := e.pub.Uploader.UploadToBlob(ctx, other.Source.Path, otherURL, nil); err != nil {
				t.Fatal(err)
			}
			deleteImage(t, e, imgName)
			createImage(t, e, imgName, otherURL)

			// Refused before any call that changes Azure.
			writes := e.countWrites(t)
			res, err := e.pub.Replicate(ctx, vid, add, d.Azure.ReplicationTimeout)
			var pe *PlanError
			if !errors.As(err, &pe) || !strings.Contains(err.Error(), "was replaced since version 1.0.0 was made") {
				t.Fatalf("replicate after replace: %v", err)
			}
			if n := writes(); n != 0 {
				t.Fatalf("%d mutating requests before the refusal", n)
			}
			if !res.Source.Changed {
				t.Fatalf("result: %+v", res)
			}

			// Source gone: the attempt is made, Azure's answer reported.
			deleteImage(t, e, imgName)
			res, err = e.pub.Replicate(ctx, vid, add, d.Azure.ReplicationTimeout)
			t.Logf("policy %s: answer %q, err %v", policy, res.AzureAnswer, err)
			if !res.Source.Gone {
				t.Fatalf("source not seen as gone: %+v", res.Source)
			}
			switch policy {
			case azemu.ReplicaPolicyStrict:
				if err == nil || !strings.HasPrefix(res.AzureAnswer, "refused") || !strings.Contains(err.Error(), "no longer exists") {
					t.Fatalf("strict: %v / %q", err, res.AzureAnswer)
				}
			case azemu.ReplicaPolicyCurrent:
				if err != nil || !strings.HasPrefix(res.AzureAnswer, "accepted") {
					t.Fatalf("current: %v\n%s", err, Explain(err))
				}
				if len(res.Regions) != 4 {
					t.Fatalf("regions after replicate: %+v", res.Regions)
				}
			}
		})
	}
}

func deleteImage(t *testing.T, e *testEnv, name string) {
	t.Helper()
	p, err := e.pub.Clients.Images.BeginDelete(context.Background(), e.rg, name, nil)
	if err == nil {
		_, err = p.PollUntilDone(context.Background(), e.pub.pollOpts())
	}
	if err != nil {
		t.Fatalf("delete image %s: %v", name, err)
	}
}

func createImage(t *testing.T, e *testEnv, name, blobURL string) {
	t.Helper()
	p, err := e.pub.Clients.Images.BeginCreateOrUpdate(context.Background(), e.rg, name, armcompute.Image{
		Location: to.Ptr("westeurope"),
		Properties: &armcompute.ImageProperties{HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypesV2),
			StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
				OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), BlobURI: to.Ptr(blobURL)}}},
	}, nil)
	if err == nil {
		_, err = p.PollUntilDone(context.Background(), e.pub.pollOpts())
	}
	if err != nil {
		t.Fatalf("create image %s: %v", name, err)
	}
}

// countWrites wraps the clients so that every mutating call is counted;
// the returned function reports the count since the call.
func (e *testEnv) countWrites(t *testing.T) func() int {
	n := 0
	c := *e.pub.Clients
	c.Versions = writeCounter{c.Versions, &n}
	c.Images = imageWriteCounter{c.Images, &n}
	e.pub.Clients = &c
	return func() int { return n }
}

type writeCounter struct {
	GalleryImageVersionsAPI
	n *int
}

func (w writeCounter) BeginUpdate(ctx context.Context, rg, g, d, v string, u armcompute.GalleryImageVersionUpdate, o *armcompute.GalleryImageVersionsClientBeginUpdateOptions) (*runtimePollerUpdate, error) {
	*w.n++
	return w.GalleryImageVersionsAPI.BeginUpdate(ctx, rg, g, d, v, u, o)
}

func (w writeCounter) BeginCreateOrUpdate(ctx context.Context, rg, g, d, v string, u armcompute.GalleryImageVersion, o *armcompute.GalleryImageVersionsClientBeginCreateOrUpdateOptions) (*runtimePollerCreate, error) {
	*w.n++
	return w.GalleryImageVersionsAPI.BeginCreateOrUpdate(ctx, rg, g, d, v, u, o)
}

func (w writeCounter) BeginDelete(ctx context.Context, rg, g, d, v string, o *armcompute.GalleryImageVersionsClientBeginDeleteOptions) (*runtimePollerDelete, error) {
	*w.n++
	return w.GalleryImageVersionsAPI.BeginDelete(ctx, rg, g, d, v, o)
}

type imageWriteCounter struct {
	ImagesAPI
	n *int
}

func (w imageWriteCounter) BeginCreateOrUpdate(ctx context.Context, rg, name string, img armcompute.Image, o *armcompute.ImagesClientBeginCreateOrUpdateOptions) (*runtimePollerImage, error) {
	*w.n++
	return w.ImagesAPI.BeginCreateOrUpdate(ctx, rg, name, img, o)
}

func testCheckDeploy(t *testing.T, e *testEnv) {
	ctx := context.Background()
	d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", `
  share {
    subscription = "99999999-0000-4000-8000-000000000001"
    principal_id = "aaaaaaaa-0000-4000-8000-000000000001"
  }`))
	if _, err := e.pub.Publish(ctx, d); err != nil {
		t.Fatal(err)
	}
	vid := d.id("1.0.0")
	// the share was granted a moment ago: not OK yet, and says why
	dc, err := e.pub.CheckDeploy(ctx, vid, "99999999-0000-4000-8000-000000000001", "northeurope", "")
	if err != nil {
		t.Fatal(err)
	}
	if dc.OK || !strings.Contains(dc.Text(), "may take up to") || !strings.Contains(dc.Text(), "granted") {
		t.Fatalf("a share granted a moment ago reported as:\n%s", dc.Text())
	}
	// once the propagation window has passed it is OK
	e.pub.RBACPropagation = time.Nanosecond
	img := ResourceID{Subscription: e.sub, ResourceGroup: e.rg, Image: "web-1.0.0"}
	tests := []struct {
		id        ResourceID
		sub, loc  string
		ok        bool
		wantInFix string
	}{
		{vid, e.sub, "northeurope", true, ""},
		{vid, e.sub, "japaneast", false, "imgpipe replicate"},
		{vid, "99999999-0000-4000-8000-000000000001", "eastus", true, ""},
		{vid, "99999999-0000-4000-8000-000000000002", "eastus", false, "share {"},
		{img, e.sub, "westeurope", true, ""},
		{img, e.sub, "northeurope", false, "gallery version"},
		{img, "99999999-0000-4000-8000-000000000001", "westeurope", false, "gallery version"},
	}
	for i, tt := range tests {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			dc, err := e.pub.CheckDeploy(ctx, tt.id, tt.sub, tt.loc, "")
			if err != nil {
				t.Fatal(err)
			}
			if dc.OK != tt.ok || (tt.wantInFix != "" && !strings.Contains(dc.Text(), tt.wantInFix)) {
				t.Fatalf("ok=%v want %v:\n%s", dc.OK, tt.ok, dc.Text())
			}
		})
	}
}

type (
	runtimePollerUpdate = runtime.Poller[armcompute.GalleryImageVersionsClientUpdateResponse]
	runtimePollerCreate = runtime.Poller[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse]
	runtimePollerDelete = runtime.Poller[armcompute.GalleryImageVersionsClientDeleteResponse]
	runtimePollerImage  = runtime.Poller[armcompute.ImagesClientCreateOrUpdateResponse]
)
