package azure

// The Azure side of the catalog's lifecycle: what a published version looks
// like (for the catalog's lineage), which versions VMs and scale sets use,
// retention's deprecation and deletion, and revocation.

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/catalog"
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

// VersionsInUse lists the image references of every VM and scale set the
// subscription holds (catalog.InUseSource): gc keeps what they reference.
func (p *Publisher) VersionsInUse(ctx context.Context) ([]catalog.InUse, error) {
	users, err := p.users(ctx)
	if err != nil {
		return nil, err
	}
	var out []catalog.InUse
	for id, by := range users {
		for _, b := range by {
			out = append(out, catalog.InUse{ResourceID: id, By: b})
		}
	}
	return out, nil
}

// Deprecate excludes a gallery version from latest and sets its end of
// life (catalog.Executor, retention's first stage).
func (p *Publisher) Deprecate(ctx context.Context, s catalog.GCStep) error {
	if s.Copy == nil || s.Copy.Kind != catalog.KindGalleryVersion {
		return nil // nothing in Azure to deprecate
	}
	id, err := ParseResourceID(s.Copy.ResourceID)
	if err != nil || id.Kind() != "version" {
		return fmt.Errorf("deprecate %s: %q is not a gallery image version id", s.Ref, s.Copy.ResourceID)
	}
	pp := &armcompute.GalleryImageVersionPublishingProfile{ExcludeFromLatest: to.Ptr(true)}
	if !s.EndOfLife.IsZero() {
		pp.EndOfLifeDate = to.Ptr(s.EndOfLife.UTC())
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

// Delete removes one copy of a version (catalog.Executor, retention's
// second stage): a gallery version, managed image, managed disk or blob.
// The catalog orders the steps by dependency. A copy already gone is success.
func (p *Publisher) Delete(ctx context.Context, s catalog.GCStep) error {
	if s.Copy == nil {
		return nil
	}
	var err error
	switch s.Copy.Kind {
	case catalog.KindGalleryVersion:
		id, perr := ParseResourceID(s.Copy.ResourceID)
		if perr != nil || id.Kind() != "version" {
			return fmt.Errorf("%q is not a gallery image version id", s.Copy.ResourceID)
		}
		err = p.deleteVersion(ctx, id, func() {})
	case catalog.KindManagedImage:
		id, perr := ParseResourceID(s.Copy.ResourceID)
		if perr != nil || id.Kind() != "image" {
			return fmt.Errorf("%q is not a managed image id", s.Copy.ResourceID)
		}
		err = p.deleteImage(ctx, id.ResourceGroup, id.Image, nil)
	case catalog.KindManagedDisk:
		rid, perr := arm.ParseResourceID(s.Copy.ResourceID)
		if perr != nil {
			return fmt.Errorf("%q is not a managed disk id: %w", s.Copy.ResourceID, perr)
		}
		err = p.deleteDisk(ctx, rid.ResourceGroupName, rid.Name, nil)
	case catalog.KindBlob:
		if p.Blobs == nil {
			return errors.New("no blob storage access configured")
		}
		err = p.Blobs.Delete(ctx, s.Copy.ResourceID)
	case catalog.KindRegion:
		return nil // goes with its gallery version
	default:
		return fmt.Errorf("%s copies are not Azure resources", s.Copy.Kind)
	}
	if isNotFound(err) {
		return nil
	}
	return err
}

// TagRevoked is the tag a revoked gallery version carries (its value is the reason).
const TagRevoked = "revoked"

// RevokeCopy excludes a revoked gallery version from latest and tags it
// revoked=<reason> (catalog.Revoker). The other tags are kept: ARM's PATCH
// replaces the whole tag set, so the version is read first.
func (p *Publisher) RevokeCopy(ctx context.Context, a catalog.RevokeAction) error {
	if a.Copy.Kind != catalog.KindGalleryVersion {
		return fmt.Errorf("%s copies are not revoked in Azure", a.Copy.Kind)
	}
	id, err := ParseResourceID(a.Copy.ResourceID)
	if err != nil || id.Kind() != "version" {
		return fmt.Errorf("revoke %s: %q is not a gallery image version id", a.Ref, a.Copy.ResourceID)
	}
	got, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, nil)
	if err != nil {
		return fmt.Errorf("read version %s: %w", id.Version, err)
	}
	tags := map[string]*string{}
	for k, v := range got.Tags {
		tags[k] = v
	}
	reason := a.Reason
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

// compile-time checks: the Publisher is what gc and revoke need.
var (
	_ catalog.InUseSource = (*Publisher)(nil)
	_ catalog.Executor    = (*Publisher)(nil)
	_ catalog.Revoker     = (*Publisher)(nil)
)

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
