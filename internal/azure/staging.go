package azure

// Staging: a gallery version is created excluded from latest, so whoever
// deploys the definition's "latest" (a VM or scale set referencing the
// definition id) only ever gets a version that was promoted to prod.
// Promotion includes it (SetExcludeFromLatest false); revocation excludes
// it again (RevokeVersion). Azure resolves latest to the highest version
// not excluded from latest in the region
// (https://learn.microsoft.com/azure/virtual-machines/shared-image-galleries,
// "excludeFromLatest"; GalleryImageVersionPublishingProfile in the
// Microsoft.Compute gallery REST spec).

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// staged is the publishing profile a new version is created with: excluded
// from latest until it is promoted, in every target region too (a region's
// own excludeFromLatest is what latest resolution in that region reads).
func staged(pp *armcompute.GalleryImageVersionPublishingProfile) *armcompute.GalleryImageVersionPublishingProfile {
	pp.ExcludeFromLatest = to.Ptr(true)
	for _, r := range pp.TargetRegions {
		if r != nil {
			r.ExcludeFromLatest = to.Ptr(true)
		}
	}
	return pp
}

// keepStaging keeps an existing version's exclusion from latest on an
// update the pipeline file asks for: whether it is in latest belongs to its
// promotion, and a file that sets exclude_from_latest = true still excludes it.
func keepStaging(pp *armcompute.GalleryImageVersionPublishingProfile, v *armcompute.GalleryImageVersion) *armcompute.GalleryImageVersionPublishingProfile {
	if isExcluded(v) {
		pp.ExcludeFromLatest = to.Ptr(true)
	}
	return pp
}

func isExcluded(v *armcompute.GalleryImageVersion) bool {
	if v == nil || v.Properties == nil || v.Properties.PublishingProfile == nil {
		return false
	}
	x := v.Properties.PublishingProfile.ExcludeFromLatest
	return x != nil && *x
}

// SetExcludeFromLatest sets a gallery version's excludeFromLatest, and
// that of each of its target regions: false when it is promoted to prod (it
// may become the definition's latest), true when it is staged again. The
// regions are sent back as they are (an update never drops one) and the
// tags are left alone.
func (p *Publisher) SetExcludeFromLatest(ctx context.Context, versionID string, exclude bool) error {
	id, err := ParseResourceID(versionID)
	if err != nil || id.Kind() != "version" {
		return fmt.Errorf("stage: %q is not a gallery image version id", versionID)
	}
	got, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, nil)
	if err != nil {
		return fmt.Errorf("read version %s: %w", id.Version, err)
	}
	pp := &armcompute.GalleryImageVersionPublishingProfile{ExcludeFromLatest: to.Ptr(exclude)}
	if got.Properties != nil && got.Properties.PublishingProfile != nil {
		for _, r := range got.Properties.PublishingProfile.TargetRegions {
			if r == nil || r.Name == nil {
				continue
			}
			pp.TargetRegions = append(pp.TargetRegions, &armcompute.TargetRegion{Name: r.Name, RegionalReplicaCount: r.RegionalReplicaCount,
				StorageAccountType: r.StorageAccountType, Encryption: r.Encryption, ExcludeFromLatest: to.Ptr(exclude)})
		}
		pp.EndOfLifeDate = got.Properties.PublishingProfile.EndOfLifeDate
	}
	if err := p.patchVersion(ctx, id, armcompute.GalleryImageVersionUpdate{
		Properties: &armcompute.GalleryImageVersionProperties{PublishingProfile: pp,
			StorageProfile: &armcompute.GalleryImageVersionStorageProfile{}},
	}); err != nil {
		return fmt.Errorf("set excludeFromLatest=%v on version %s: %w", exclude, id.Version, err)
	}
	return nil
}
