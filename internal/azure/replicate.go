package azure

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

// SourceCheck compares a version's source now with the fingerprint recorded
// on the version when it was made.
type SourceCheck struct {
	SourceID   string `json:"source"` // managed image id or blob URL
	Gone       bool   `json:"gone"`
	Changed    bool   `json:"changed"`
	Unverified bool   `json:"unverified"` // the version carries no fingerprint (not made by imgpipe)
	Why        string `json:"why,omitempty"`
}

// checkSource reads the version's source (managed image or VHD blob) and
// compares it with the fingerprint in the version's tags. It changes nothing.
func (p *Publisher) checkSource(ctx context.Context, v *armcompute.GalleryImageVersion) (SourceCheck, error) {
	var sc SourceCheck
	name := deref(v.Name)
	imageID := tag(v.Tags, TagImageID)
	var blobURL string
	if pr := v.Properties; pr != nil && pr.StorageProfile != nil {
		if s := pr.StorageProfile.Source; s != nil && s.ID != nil && imageID == "" {
			imageID = *s.ID
		}
		if o := pr.StorageProfile.OSDiskImage; o != nil && o.Source != nil && o.Source.URI != nil {
			blobURL = *o.Source.URI
		}
	}
	if blobURL == "" {
		blobURL = tag(v.Tags, TagBlobURL)
	}
	if diskID := tag(v.Tags, TagDiskID); diskID != "" {
		return p.checkDiskSource(ctx, v, diskID)
	}
	switch {
	case imageID != "":
		sc.SourceID = imageID
		rid, err := ParseResourceID(imageID)
		if err != nil || rid.Kind() != "image" {
			sc.Unverified, sc.Why = true, fmt.Sprintf("the version's source %s is not a managed image imgpipe can check", imageID)
			return sc, nil
		}
		img, err := p.Clients.Images.Get(ctx, rid.ResourceGroup, rid.Image, nil)
		if isNotFound(err) {
			sc.Gone, sc.Why = true, fmt.Sprintf("managed image %s, which version %s was made from, no longer exists", rid.Image, name)
			return sc, nil
		}
		if err != nil {
			return sc, fmt.Errorf("read the version's source image %s: %w", imageID, err)
		}
		rec := tag(v.Tags, TagImageCreated)
		now := imageCreated(&img.Image)
		var diffs []string
		if rec != "" && now != "" && rec != now {
			diffs = append(diffs, fmt.Sprintf("it was created at %s, the version was made from the one created at %s", now, rec))
		}
		if want, got := tag(v.Tags, TagSourceDigest), tag(img.Tags, TagSourceDigest); want != "" && got != want {
			diffs = append(diffs, fmt.Sprintf("it holds %s, the version holds %s", orUnknown(got), want))
		} else if want, got := tag(v.Tags, TagBlobMD5), tag(img.Tags, TagBlobMD5); want != "" && got != want {
			diffs = append(diffs, fmt.Sprintf("its blob MD5 is %s, the version's is %s", orUnknown(got), want))
		}
		if rec == "" && tag(v.Tags, TagSourceDigest) == "" {
			sc.Unverified, sc.Why = true, fmt.Sprintf("version %s records no fingerprint of its source (not published by imgpipe); cannot tell whether %s was replaced", name, rid.Image)
			return sc, nil
		}
		if len(diffs) > 0 {
			sc.Changed = true
			sc.Why = fmt.Sprintf("managed image %s was replaced since version %s was made (%s): a new region would get different bits than the existing ones. "+
				"Publish a new version instead (versions are immutable)", rid.Image, name, strings.Join(diffs, "; "))
		}
		return sc, nil
	case blobURL != "":
		sc.SourceID = blobURL
		if p.Blobs == nil {
			sc.Unverified, sc.Why = true, "no blob access configured to check the VHD the version was made from"
			return sc, nil
		}
		b, err := p.Blobs.Stat(ctx, blobURL)
		if err != nil {
			return sc, fmt.Errorf("read the version's source blob: %w", err)
		}
		if b == nil {
			sc.Gone, sc.Why = true, fmt.Sprintf("blob %s, which version %s was made from, no longer exists", blobURL, name)
			return sc, nil
		}
		want := printFromTags(v.Tags)
		if want.empty() {
			sc.Unverified, sc.Why = true, fmt.Sprintf("version %s records no fingerprint of its source blob", name)
			return sc, nil
		}
		if diff := want.differs(b, b.Metadata[metaDigest]); diff != "" {
			sc.Changed = true
			sc.Why = fmt.Sprintf("blob %s was replaced since version %s was made (%s): a new region would get different bits. Publish a new version instead",
				blobURL, name, diff)
		}
		return sc, nil
	}
	sc.Unverified, sc.Why = true, fmt.Sprintf("version %s names no source imgpipe can check", name)
	return sc, nil
}

// ReplicateResult is what replicate did.
type ReplicateResult struct {
	VersionID string           `json:"version_id"`
	Added     []string         `json:"added"`
	Source    SourceCheck      `json:"source"`
	Regions   []RegionProgress `json:"regions,omitempty"`
	// AzureAnswer says what Azure did when the source was gone.
	AzureAnswer string `json:"azure_answer,omitempty"`
}

// Replicate adds target regions to an existing version. It refuses, before
// any call that changes Azure, when the version's source was replaced since
// the version was made. When the source is gone it asks Azure anyway and
// reports its answer (older Azure refused this; current Azure copies from
// the existing replicas).
func (p *Publisher) Replicate(ctx context.Context, id ResourceID, add []config.TargetRegion, timeout time.Duration) (*ReplicateResult, error) {
	if id.Kind() != "version" {
		return nil, fmt.Errorf("%s is not a gallery image version id", id)
	}
	res := &ReplicateResult{VersionID: id.String()}
	got, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version,
		&armcompute.GalleryImageVersionsClientGetOptions{Expand: to.Ptr(armcompute.ReplicationStatusTypesReplicationStatus)})
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", id.Version, err)
	}
	v := &got.GalleryImageVersion
	pp := &armcompute.GalleryImageVersionPublishingProfile{}
	if v.Properties != nil && v.Properties.PublishingProfile != nil {
		pp = v.Properties.PublishingProfile
	}
	have := map[string]bool{}
	var regions []*armcompute.TargetRegion
	for _, r := range pp.TargetRegions {
		if r != nil && r.Name != nil {
			have[config.NormalizeLocation(*r.Name)] = true
			regions = append(regions, &armcompute.TargetRegion{Name: r.Name, RegionalReplicaCount: r.RegionalReplicaCount,
				StorageAccountType: r.StorageAccountType, ExcludeFromLatest: r.ExcludeFromLatest})
		}
	}
	for _, r := range add {
		name := config.NormalizeLocation(r.Name)
		if have[name] {
			continue
		}
		have[name] = true
		res.Added = append(res.Added, name)
		regions = append(regions, &armcompute.TargetRegion{Name: to.Ptr(name), RegionalReplicaCount: to.Ptr(r.Replicas),
			StorageAccountType: to.Ptr(armcompute.StorageAccountType(r.StorageAccountType))})
	}
	if len(res.Added) == 0 {
		res.Regions = regionsOf(v)
		return res, nil
	}
	sc, err := p.checkSource(ctx, v)
	if err != nil {
		return nil, err
	}
	res.Source = sc
	if sc.Changed {
		return res, planErrorf("refusing to replicate version %s to %s: %s", id.Version, strings.Join(res.Added, ", "), sc.Why)
	}
	newPP := &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: regions, ExcludeFromLatest: pp.ExcludeFromLatest, EndOfLifeDate: pp.EndOfLifeDate}
	err = p.updateVersion(ctx, id, newPP, func() {})
	if sc.Gone {
		if err != nil {
			res.AzureAnswer = "refused: " + Explain(err)
			return res, fmt.Errorf("%s. imgpipe asked Azure to add %s anyway and Azure refused (the older rule: new replicas are copied from the source). "+
				"Publish a new version from the original disk instead: %w", sc.Why, strings.Join(res.Added, ", "), err)
		}
		res.AzureAnswer = "accepted: Azure copies the new regions from the version's existing replicas, the source is no longer needed"
	}
	if err != nil {
		return res, fmt.Errorf("add %s to version %s: %w", strings.Join(res.Added, ", "), id.Version, err)
	}
	res.Regions, err = p.watchVersion(ctx, id, timeout, nil, nil)
	return res, err
}

// checkDiskSource compares the managed disk a version was made from with
// the fingerprint on the version.
func (p *Publisher) checkDiskSource(ctx context.Context, v *armcompute.GalleryImageVersion, diskID string) (SourceCheck, error) {
	sc := SourceCheck{SourceID: diskID}
	name := deref(v.Name)
	rid, err := arm.ParseResourceID(diskID)
	if err != nil {
		sc.Unverified, sc.Why = true, "the version's source "+diskID+" is not a disk id"
		return sc, nil
	}
	got, err := p.Clients.Disks.Get(ctx, rid.ResourceGroupName, rid.Name, nil)
	if isNotFound(err) {
		sc.Gone, sc.Why = true, fmt.Sprintf("managed disk %s, which version %s was made from, no longer exists", rid.Name, name)
		return sc, nil
	}
	if err != nil {
		return sc, fmt.Errorf("read the version's source disk %s: %w", diskID, err)
	}
	if want, have := tag(v.Tags, TagSourceDigest), tag(got.Tags, TagSourceDigest); want != "" && want != have {
		sc.Changed = true
		sc.Why = fmt.Sprintf("managed disk %s was replaced since version %s was made (it holds %s, the version holds %s): a new region would get different bits. Publish a new version instead",
			rid.Name, name, orUnknown(have), want)
	}
	return sc, nil
}
