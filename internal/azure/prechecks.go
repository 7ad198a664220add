package azure

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

// The plan's refusals of what Azure would refuse later, decided from reads
// only, so that nothing is uploaded (a multi-GiB blob or disk) for a publish
// Azure is bound to reject. Each names its Azure rule; azemu enforces the
// same rules (internal/azemu, TestConformanceRules).

// checkSecurity: Trusted launch needs a generation 2 image ("Trusted launch
// supports only Generation 2 VMs", learn.microsoft.com/azure/virtual-machines/trusted-launch),
// and a Trusted launch version cannot come from a managed image
// (learn.microsoft.com/azure/virtual-machines/trusted-launch-faq).
func checkSecurity(d *Desired, gen string) error {
	if !strings.EqualFold(d.Image.SecurityType, "TrustedLaunch") {
		return nil
	}
	if gen == "V1" {
		why := "the pipeline file says hyperv_generation = \"V1\""
		if d.Source != nil && d.Source.Generation == "V1" {
			why = "the disk " + d.Source.Path + " is generation 1 (BIOS boot)"
		}
		return planErrorf("image %q: security_type = \"TrustedLaunch\" needs a generation 2 (UEFI) image, but %s; Azure refuses a TrustedLaunch definition with hyperVGeneration V1. "+
			"Nothing was uploaded. Build a UEFI (generation 2) image, or set security_type = \"Standard\"", d.Image.Name, why)
	}
	if d.Azure.ManagedImage && d.Azure.Upload != "disk" {
		return planErrorf("image %q: a TrustedLaunch version cannot be made from a managed image. Nothing was uploaded. Remove managed_image = true (the version is then made from the VHD blob) or set upload = \"disk\"", d.Image.Name)
	}
	return nil
}

// checkIdentifier: "(publisher, offer, sku) unique per gallery" — Azure
// refuses a new definition whose identifier another definition of the gallery
// has (learn.microsoft.com/azure/virtual-machines/troubleshooting-shared-images).
func (p *Publisher) checkIdentifier(ctx context.Context, d *Desired) error {
	a := d.Azure
	pub, offer, sku := d.identifier()
	pager := p.Clients.Definitions.NewListByGalleryPager(a.ResourceGroup, a.Gallery, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list definitions of gallery %s: %w", a.Gallery, err)
		}
		for _, def := range page.Value {
			if def == nil || def.Properties == nil || def.Properties.Identifier == nil || strings.EqualFold(deref(def.Name), a.Definition) {
				continue
			}
			id := def.Properties.Identifier
			if strings.EqualFold(deref(id.Publisher), pub) && strings.EqualFold(deref(id.Offer), offer) && strings.EqualFold(deref(id.SKU), sku) {
				return planErrorf("definition %s cannot be created in gallery %s: definition %s already has publisher %q, offer %q, sku %q, and Azure requires that combination to be unique in a gallery. "+
					"Nothing was uploaded. Set publisher, offer or sku in image %q to a combination of its own (sku defaults to the definition name), or publish to definition %s",
					a.Definition, a.Gallery, deref(def.Name), pub, offer, sku, d.Image.Name, deref(def.Name))
			}
		}
	}
	return nil
}

// checkStorage reads the storage account the blob goes to: it must exist in
// the target subscription (its id is what a version from a VHD names, as
// storageAccountId), be in the target region when a managed image is made
// from the blob ("The source blob ... does not belong to the same region",
// learn.microsoft.com/azure/virtual-machines/capture-image-resource), and,
// for a version made straight from the VHD, the identity must be allowed to
// list its keys (Microsoft.Storage/storageAccounts/listKeys/action,
// learn.microsoft.com/azure/virtual-machines/image-version).
func (p *Publisher) checkStorage(ctx context.Context, d *Desired) error {
	a := d.Azure
	if p.Clients.StorageAccounts == nil || a.Storage == nil || a.Upload == "disk" {
		return nil
	}
	s := a.Storage
	acct, err := p.Clients.StorageAccounts.GetProperties(ctx, s.ResourceGroup, s.Account, nil)
	var re *azcore.ResponseError
	switch {
	case isNotFound(err):
		return planErrorf("storage account %s was not found in resource group %s of subscription %s. Nothing was uploaded. "+
			"Azure makes images only from blobs in a storage account of the target subscription: set storage.resource_group to the account's resource group (it defaults to the azure block's), or use an account in subscription %s",
			s.Account, s.ResourceGroup, a.Subscription, a.Subscription)
	case errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized):
		return planErrorf("the identity imgpipe runs as cannot read storage account %s (%s). Nothing was uploaded. Grant it Reader (or Contributor) on the account", s.Account, re.ErrorCode)
	case err != nil:
		return fmt.Errorf("read storage account %s: %w", s.Account, err)
	}
	loc := config.NormalizeLocation(deref(acct.Location))
	if a.ManagedImage && loc != a.Location {
		return planErrorf("storage account %s is in %s, but the managed image is made in %s, and Azure makes a managed image only from a blob in its own region. "+
			"Nothing was uploaded. Use a storage account in %s, or publish to location = %q", s.Account, loc, a.Location, a.Location, loc)
	}
	if !a.ManagedImage {
		if _, err := p.Clients.StorageAccounts.ListKeys(ctx, s.ResourceGroup, s.Account, nil); err != nil {
			if errors.As(err, &re) && (re.StatusCode == http.StatusForbidden || re.StatusCode == http.StatusUnauthorized) {
				return planErrorf("the identity imgpipe runs as may not list the keys of storage account %s (Microsoft.Storage/storageAccounts/listKeys/action, %s), which Azure needs to make a version from a VHD in it. "+
					"Nothing was uploaded. Grant it Storage Account Contributor (or Contributor) on the account; role assignments take up to 10 minutes to take effect", s.Account, re.ErrorCode)
			}
			return fmt.Errorf("list keys of storage account %s: %w", s.Account, err)
		}
	}
	return nil
}

// keepRegions returns pp with every region of the existing version v that pp
// leaves out added back as it is: imgpipe never drops a replicated region by
// omission (with allowDeletionOfReplicatedLocations = false Azure refuses the
// update anyway; dropping a region is an outage there, Azure/azure-cli#24099).
// Removing a region is RemoveRegions, an explicit step of its own.
func keepRegions(pp *armcompute.GalleryImageVersionPublishingProfile, v *armcompute.GalleryImageVersion) *armcompute.GalleryImageVersionPublishingProfile {
	if v == nil || v.Properties == nil || v.Properties.PublishingProfile == nil {
		return pp
	}
	have := map[string]bool{}
	for _, r := range pp.TargetRegions {
		if r != nil && r.Name != nil {
			have[config.NormalizeLocation(*r.Name)] = true
		}
	}
	for _, r := range v.Properties.PublishingProfile.TargetRegions {
		if r == nil || r.Name == nil || have[config.NormalizeLocation(*r.Name)] {
			continue
		}
		have[config.NormalizeLocation(*r.Name)] = true
		pp.TargetRegions = append(pp.TargetRegions, &armcompute.TargetRegion{Name: r.Name, RegionalReplicaCount: r.RegionalReplicaCount,
			StorageAccountType: r.StorageAccountType, ExcludeFromLatest: r.ExcludeFromLatest, Encryption: r.Encryption})
	}
	return pp
}

// RemoveRegions drops target regions from a version, as the one explicit way
// imgpipe removes replicas: it refuses the version's own region (Azure keeps
// the source region among the targets), then lifts
// safetyProfile.allowDeletionOfReplicatedLocations for the change and sets it
// back to false.
func (p *Publisher) RemoveRegions(ctx context.Context, id ResourceID, remove []string) ([]string, error) {
	if id.Kind() != "version" {
		return nil, fmt.Errorf("%s is not a gallery image version id", id)
	}
	got, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, nil)
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", id.Version, err)
	}
	v := &got.GalleryImageVersion
	if v.Properties == nil || v.Properties.PublishingProfile == nil {
		return nil, fmt.Errorf("version %s has no publishing profile", id.Version)
	}
	drop := map[string]bool{}
	for _, r := range remove {
		drop[config.NormalizeLocation(r)] = true
	}
	if drop[config.NormalizeLocation(deref(v.Location))] {
		return nil, planErrorf("region %s is the location of version %s: Azure keeps a version in its own region. Nothing was changed", config.NormalizeLocation(deref(v.Location)), id.Version)
	}
	pp := v.Properties.PublishingProfile
	var keep []*armcompute.TargetRegion
	var removed []string
	for _, r := range pp.TargetRegions {
		if r == nil || r.Name == nil {
			continue
		}
		if drop[config.NormalizeLocation(*r.Name)] {
			removed = append(removed, config.NormalizeLocation(*r.Name))
			continue
		}
		keep = append(keep, &armcompute.TargetRegion{Name: r.Name, RegionalReplicaCount: r.RegionalReplicaCount, StorageAccountType: r.StorageAccountType, ExcludeFromLatest: r.ExcludeFromLatest, Encryption: r.Encryption})
	}
	if len(removed) == 0 {
		return nil, nil
	}
	safety := func(allow bool) error {
		return p.patchVersion(ctx, id, armcompute.GalleryImageVersionUpdate{Properties: &armcompute.GalleryImageVersionProperties{
			SafetyProfile:  &armcompute.GalleryImageVersionSafetyProfile{AllowDeletionOfReplicatedLocations: to.Ptr(allow)},
			StorageProfile: &armcompute.GalleryImageVersionStorageProfile{},
		}})
	}
	if err := safety(true); err != nil {
		return nil, fmt.Errorf("allow removing regions of version %s: %w", id.Version, err)
	}
	err = p.patchVersion(ctx, id, armcompute.GalleryImageVersionUpdate{Properties: &armcompute.GalleryImageVersionProperties{
		PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: keep, ExcludeFromLatest: pp.ExcludeFromLatest, EndOfLifeDate: pp.EndOfLifeDate},
		SafetyProfile:     &armcompute.GalleryImageVersionSafetyProfile{AllowDeletionOfReplicatedLocations: to.Ptr(true)},
		StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{},
	}})
	if rerr := safety(false); rerr != nil && err == nil {
		err = fmt.Errorf("set allowDeletionOfReplicatedLocations back to false on version %s (regions were removed): %w", id.Version, rerr)
	}
	if err != nil {
		return nil, fmt.Errorf("remove %s from version %s: %w", strings.Join(removed, ", "), id.Version, err)
	}
	return removed, nil
}
