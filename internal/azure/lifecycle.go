package azure

// The Azure side of a version's lifecycle: what a published version looks
// like, which versions VMs and scale sets use, retention's deprecation and
// deletion, and revocation. internal/pipeline translates to the catalog.

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// VersionState is what Azure holds for a gallery image version: its
// provisioning state, the fingerprints publish recorded in its tags, and
// the replication state of each target region.
type VersionState struct {
	ID                string            `json:"id"`
	Location          string            `json:"location"`
	ProvisioningState string            `json:"provisioning_state"`
	Tags              map[string]string `json:"tags,omitempty"`
	Regions           []RegionProgress  `json:"regions,omitempty"`
	// SourceID is the managed image or managed disk the version was made
	// from ("" when made straight from a VHD blob).
	SourceID string `json:"source_id,omitempty"`
}

// DescribeVersion reads a gallery image version with its replication status.
func (p *Publisher) DescribeVersion(ctx context.Context, id ResourceID) (*VersionState, error) {
	got, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version,
		&armcompute.GalleryImageVersionsClientGetOptions{Expand: to.Ptr(armcompute.ReplicationStatusTypesReplicationStatus)})
	if err != nil {
		return nil, fmt.Errorf("read version %s: %w", id.Version, err)
	}
	v := &got.GalleryImageVersion
	st := &VersionState{ID: deref(v.ID), Location: deref(v.Location), ProvisioningState: provisioning(v), Tags: map[string]string{}, Regions: regionsOf(v)}
	if st.ID == "" {
		st.ID = id.String()
	}
	for k, val := range v.Tags {
		if val != nil {
			st.Tags[k] = *val
		}
	}
	if v.Properties != nil && v.Properties.StorageProfile != nil && v.Properties.StorageProfile.Source != nil {
		st.SourceID = deref(v.Properties.StorageProfile.Source.ID)
	}
	// Regions that replication status does not list yet are still pending.
	if v.Properties != nil && v.Properties.PublishingProfile != nil {
		have := map[string]bool{}
		for _, r := range st.Regions {
			have[r.Region] = true
		}
		for _, tr := range v.Properties.PublishingProfile.TargetRegions {
			if tr == nil || tr.Name == nil {
				continue
			}
			name := strings.ToLower(strings.ReplaceAll(*tr.Name, " ", ""))
			if !have[name] {
				have[name] = true
				st.Regions = append(st.Regions, RegionProgress{Region: name, State: "Unknown"})
			}
		}
	}
	return st, nil
}

// VersionsInUse maps each image reference of a VM or scale set in the
// subscription to what uses it: retention keeps what they reference.
func (p *Publisher) VersionsInUse(ctx context.Context) (map[string][]string, error) {
	return p.users(ctx)
}

// DeprecateVersion excludes a gallery version from latest and sets its end
// of life (when not zero): retention's first stage.
func (p *Publisher) DeprecateVersion(ctx context.Context, versionID string, endOfLife time.Time) error {
	id, err := ParseResourceID(versionID)
	if err != nil || id.Kind() != "version" {
		return fmt.Errorf("deprecate: %q is not a gallery image version id", versionID)
	}
	pp := &armcompute.GalleryImageVersionPublishingProfile{ExcludeFromLatest: to.Ptr(true)}
	if !endOfLife.IsZero() {
		pp.EndOfLifeDate = to.Ptr(endOfLife.UTC())
	}
	return p.patchVersion(ctx, id, armcompute.GalleryImageVersionUpdate{
		Properties: &armcompute.GalleryImageVersionProperties{PublishingProfile: pp}})
}

func (p *Publisher) patchVersion(ctx context.Context, id ResourceID, u armcompute.GalleryImageVersionUpdate) error {
	return p.Consistency.do(ctx, "update version", func(ctx context.Context) error {
		poller, err := p.Clients.Versions.BeginUpdate(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, u, nil)
		if err != nil {
			return err
		}
		_, err = poller.PollUntilDone(ctx, p.pollOpts())
		return err
	})
}

// DeleteCopy removes one copy of a version (retention's second stage): a
// gallery version, managed image, managed disk or blob; a region goes with
// its version. The caller orders the deletions by dependency. A copy
// already gone is success.
func (p *Publisher) DeleteCopy(ctx context.Context, kind Kind, resourceID string) error {
	var err error
	switch kind {
	case KindVersion:
		id, perr := ParseResourceID(resourceID)
		if perr != nil || id.Kind() != "version" {
			return fmt.Errorf("%q is not a gallery image version id", resourceID)
		}
		err = p.deleteVersion(ctx, id, func() {})
	case KindManagedImage:
		id, perr := ParseResourceID(resourceID)
		if perr != nil || id.Kind() != "image" {
			return fmt.Errorf("%q is not a managed image id", resourceID)
		}
		err = p.deleteImage(ctx, id.ResourceGroup, id.Image, nil)
	case KindDisk:
		rid, perr := arm.ParseResourceID(resourceID)
		if perr != nil {
			return fmt.Errorf("%q is not a managed disk id: %w", resourceID, perr)
		}
		err = p.deleteDisk(ctx, rid.ResourceGroupName, rid.Name, nil)
	case KindBlob:
		if p.Blobs == nil {
			return errors.New("no blob storage access configured")
		}
		err = p.Blobs.Delete(ctx, resourceID)
	case KindRegion:
		return nil // goes with its gallery version
	default:
		return fmt.Errorf("%s copies are not Azure resources", kind)
	}
	if isNotFound(err) {
		return nil
	}
	return err
}

// TagRevoked is the tag a revoked gallery version carries (its value is the reason).
const TagRevoked = "revoked"

// RevokeVersion excludes a revoked gallery version from latest and tags it
// revoked=<reason>. The other tags are kept: ARM's PATCH replaces the whole
// tag set, so the version is read first.
func (p *Publisher) RevokeVersion(ctx context.Context, versionID, reason string) error {
	id, err := ParseResourceID(versionID)
	if err != nil || id.Kind() != "version" {
		return fmt.Errorf("revoke: %q is not a gallery image version id", versionID)
	}
	got, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, nil)
	if err != nil {
		return fmt.Errorf("read version %s: %w", id.Version, err)
	}
	tags := map[string]*string{}
	for k, v := range got.Tags {
		tags[k] = v
	}
	if reason == "" {
		reason = "revoked"
	}
	if len(reason) > 256 { // Azure's tag value limit
		reason = reason[:256]
	}
	tags[TagRevoked] = to.Ptr(reason)
	return p.patchVersion(ctx, id, armcompute.GalleryImageVersionUpdate{
		Tags: tags,
		Properties: &armcompute.GalleryImageVersionProperties{PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{
			ExcludeFromLatest: to.Ptr(true)}},
	})
}

// SourceExists reports whether the managed image or managed disk id still
// exists (a managed image is removed after replication unless
// keep_managed_image is set).
func (p *Publisher) SourceExists(ctx context.Context, id string) (bool, error) {
	rid, err := arm.ParseResourceID(id)
	if err != nil {
		return false, fmt.Errorf("%q is not a resource id: %w", id, err)
	}
	switch strings.ToLower(rid.ResourceType.String()) {
	case "microsoft.compute/images":
		_, err = p.Clients.Images.Get(ctx, rid.ResourceGroupName, rid.Name, nil)
	case "microsoft.compute/disks":
		_, err = p.Clients.Disks.Get(ctx, rid.ResourceGroupName, rid.Name, nil)
	default:
		return false, fmt.Errorf("%s is neither a managed image nor a managed disk", id)
	}
	if isNotFound(err) {
		return false, nil
	}
	return err == nil, err
}
