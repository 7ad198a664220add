package azure

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/config"
)

// blobsIn counts the blobs of a container (0 when it does not exist).
func (e *testEnv) blobsIn(t *testing.T, container string) int {
	t.Helper()
	c, err := azblob.NewClientFromConnectionString(e.emu.Azurite.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	pager := c.NewListBlobsFlatPager(container, nil)
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			if strings.Contains(err.Error(), "ContainerNotFound") {
				return 0
			}
			t.Fatal(err)
		}
		n += len(page.Segment.BlobItems)
	}
	return n
}

// wantRefusedBeforeUpload runs plan and publish and checks both refuse with a
// PlanError containing want, and that nothing was uploaded or created.
func (e *testEnv) wantRefusedBeforeUpload(t *testing.T, d *Desired, want string) {
	t.Helper()
	before := e.resources()
	_, err := e.pub.Plan(context.Background(), d)
	var pe *PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Nothing was uploaded") {
		t.Fatalf("plan: %v, want a refusal saying %q", err, want)
	}
	_, err = e.pub.Publish(context.Background(), d)
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), want) {
		t.Fatalf("publish: %v, want the plan's refusal", err)
	}
	if n := e.blobsIn(t, d.Azure.Storage.Container); n != 0 {
		t.Fatalf("%d blobs uploaded before the refusal", n)
	}
	if after := e.resources(); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Fatalf("Azure changed before the refusal:\nbefore %v\nafter  %v", before, after)
	}
}

// TestPlanRefusesBeforeUpload: what Azure refuses only after an upload is
// refused by the plan, with zero bytes uploaded.
func TestPlanRefusesBeforeUpload(t *testing.T) {
	t.Run("StorageAccountInAnotherRegion", func(t *testing.T) {
		// the emulator's storage account is in northeurope, the target westeurope
		e := startEnv(t, azemu.Options{Storage: azemu.Storage{Location: "northeurope"}})
		e.rg = "rg-far-storage"
		d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", ""))
		e.wantRefusedBeforeUpload(t, d, "storage account devstoreaccount1 is in northeurope")
	})
	e := startEnv(t, azemu.Options{})
	t.Run("StorageAccountNotInTheResourceGroup", func(t *testing.T) {
		e.rg = "rg-no-storage"
		d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", ""))
		d.Azure.Storage.ResourceGroup = e.rg
		e.wantRefusedBeforeUpload(t, d, "storage.resource_group")
	})
	t.Run("DefinitionIdentityClash", func(t *testing.T) {
		e.rg = "rg-identity-clash"
		ctx := context.Background()
		c := e.pub.Clients
		if _, err := c.ResourceGroups.CreateOrUpdate(ctx, e.rg, armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
			t.Fatal(err)
		}
		gp, err := c.Galleries.BeginCreateOrUpdate(ctx, e.rg, galleryFor(e.rg), armcompute.Gallery{Location: to.Ptr("westeurope")}, nil)
		if err == nil {
			_, err = gp.PollUntilDone(ctx, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		// another definition already has the identifier imgpipe would give "web"
		dp, err := c.Definitions.BeginCreateOrUpdate(ctx, e.rg, galleryFor(e.rg), "older", armcompute.GalleryImage{
			Location: to.Ptr("westeurope"),
			Properties: &armcompute.GalleryImageProperties{
				OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
				HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
				Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("web"), SKU: to.Ptr("web")},
			},
		}, nil)
		if err == nil {
			_, err = dp.PollUntilDone(ctx, nil)
		}
		if err != nil {
			t.Fatal(err)
		}
		d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", ""))
		e.wantRefusedBeforeUpload(t, d, "definition older already has publisher")
	})
	t.Run("TrustedLaunchOnAGeneration1Disk", func(t *testing.T) {
		e.rg = "rg-tl-v1"
		d := e.desired(t, e.pipeline(t, makeDisk(t, "V1", 1), `security_type = "TrustedLaunch"`, ""))
		e.wantRefusedBeforeUpload(t, d, "needs a generation 2 (UEFI) image")
	})
}

// TestRegionsNeverDroppedByOmission: a pipeline file that no longer lists a
// replicated region keeps it (an explicit keep line; the update sends it
// back, which Azure requires with allowDeletionOfReplicatedLocations =
// false), and RemoveRegions is the explicit way to drop one.
func TestRegionsNeverDroppedByOmission(t *testing.T) {
	e := startEnv(t, azemu.Options{})
	e.rg = "rg-keep-regions"
	ctx := context.Background()
	src := makeDisk(t, "V2", 1)
	d := e.desired(t, e.pipeline(t, src, "", ""))
	if _, err := e.pub.Publish(ctx, d); err != nil {
		t.Fatal(err)
	}
	// the file drops eastus and changes westeurope's replicas
	d2 := e.desired(t, e.pipeline(t, src, "", ""))
	var regions []config.TargetRegion
	for _, r := range d2.Azure.TargetRegions {
		if r.Name == "eastus" {
			continue
		}
		if r.Name == "westeurope" {
			r.Replicas = 3
		}
		regions = append(regions, r)
	}
	d2.Azure.TargetRegions = regions
	plan, err := e.pub.Plan(ctx, d2)
	if err != nil {
		t.Fatal(err)
	}
	if txt := plan.Text(); !strings.Contains(txt, "= keep      region          eastus") || !strings.Contains(txt, "never drops a region by omission") {
		t.Fatalf("plan does not say eastus is kept:\n%s", txt)
	}
	if _, err := e.pub.Apply(ctx, plan); err != nil {
		t.Fatalf("update keeping eastus: %v", err)
	}
	id := d.id("1.0.0")
	names := func() []string {
		v, err := e.pub.Clients.Versions.Get(ctx, e.rg, galleryFor(e.rg), "web", "1.0.0", nil)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range v.Properties.PublishingProfile.TargetRegions {
			out = append(out, config.NormalizeLocation(*r.Name))
		}
		return out
	}
	if got := strings.Join(names(), ","); !strings.Contains(got, "eastus") {
		t.Fatalf("eastus dropped by the update: %s", got)
	}
	// the source region cannot go; another can, explicitly
	if _, err := e.pub.RemoveRegions(ctx, id, []string{"westeurope"}); err == nil {
		t.Fatal("removing the version's own region was accepted")
	}
	removed, err := e.pub.RemoveRegions(ctx, id, []string{"East US"})
	if err != nil || strings.Join(removed, ",") != "eastus" {
		t.Fatalf("remove eastus: %v %v", removed, err)
	}
	if got := strings.Join(names(), ","); strings.Contains(got, "eastus") {
		t.Fatalf("eastus still a target: %s", got)
	}
	v, _ := e.pub.Clients.Versions.Get(ctx, e.rg, galleryFor(e.rg), "web", "1.0.0", nil)
	if sp := v.Properties.SafetyProfile; sp == nil || sp.AllowDeletionOfReplicatedLocations == nil || *sp.AllowDeletionOfReplicatedLocations {
		t.Fatalf("allowDeletionOfReplicatedLocations not set back to false: %+v", sp)
	}
}
