package azure

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/config"
	"imgpipe/internal/semver"
)

// observed is the state read from Azure.
type observed struct {
	rg       *armresources.ResourceGroup
	gallery  *armcompute.Gallery
	def      *armcompute.GalleryImage
	versions []*armcompute.GalleryImageVersion
	version  *armcompute.GalleryImageVersion // with replication status
	image    *armcompute.Image
	disk     *armcompute.Disk
	blob     *BlobProps
	roles    []*armauthorization.RoleAssignment
	// gone holds the sources an existing version was made from that no
	// longer exist (managed image, blob, managed disk ids).
	gone map[string]bool
}

// get runs a Get and turns 404 into (false, nil).
func get(err error) (bool, error) {
	if err == nil {
		return true, nil
	}
	if isNotFound(err) {
		return false, nil
	}
	return false, err
}

// observe reads the current state. version may be "" (next-patch: decided
// from the list of versions).
func (p *Publisher) observe(ctx context.Context, d *Desired) (*observed, error) {
	c := p.Clients
	a := d.Azure
	st := &observed{}
	rg, err := c.ResourceGroups.Get(ctx, a.ResourceGroup, nil)
	if ok, err := get(err); err != nil {
		return nil, fmt.Errorf("read resource group %s: %w", a.ResourceGroup, err)
	} else if ok {
		st.rg = &rg.ResourceGroup
	}
	if st.rg == nil {
		return st, nil
	}
	g, err := c.Galleries.Get(ctx, a.ResourceGroup, a.Gallery, nil)
	if ok, err := get(err); err != nil {
		return nil, fmt.Errorf("read gallery %s: %w", a.Gallery, err)
	} else if ok {
		st.gallery = &g.Gallery
	}
	if st.gallery != nil {
		def, err := c.Definitions.Get(ctx, a.ResourceGroup, a.Gallery, a.Definition, nil)
		if ok, err := get(err); err != nil {
			return nil, fmt.Errorf("read definition %s: %w", a.Definition, err)
		} else if ok {
			st.def = &def.GalleryImage
		}
		galleryID := ResourceID{Subscription: a.Subscription, ResourceGroup: a.ResourceGroup, Gallery: a.Gallery}.String()
		if len(a.Shares) > 0 {
			pager := c.RoleAssignments.NewListForScopePager(galleryID, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr("atScope()")})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					return nil, fmt.Errorf("list role assignments on gallery %s: %w", a.Gallery, err)
				}
				st.roles = append(st.roles, page.Value...)
			}
		}
	}
	if st.def != nil {
		pager := c.Versions.NewListByGalleryImagePager(a.ResourceGroup, a.Gallery, a.Definition, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list versions of %s: %w", a.Definition, err)
			}
			st.versions = append(st.versions, page.Value...)
		}
	}
	return st, nil
}

// resolveVersion decides the version name: the explicit one, or for
// next-patch the version already made from this source (so a re-run resumes
// it) or one more than the highest.
func resolveVersion(d *Desired, versions []*armcompute.GalleryImageVersion) (string, error) {
	if d.Azure.Version != "next-patch" {
		return d.Azure.Version, nil
	}
	var best [3]int
	found := false
	for _, v := range versions {
		if v == nil || v.Name == nil {
			continue
		}
		if d.Source != nil && d.Source.Is(tag(v.Tags, TagSourceDigest)) {
			return *v.Name, nil
		}
		n, ok := parseVersion(*v.Name)
		if !ok {
			continue
		}
		if !found || less(best, n) {
			best, found = n, true
		}
	}
	if !found {
		return "1.0.0", nil
	}
	if best[2] == 1<<31-1 {
		return "", planErrorf("cannot bump patch of %d.%d.%d", best[0], best[1], best[2])
	}
	return fmt.Sprintf("%d.%d.%d", best[0], best[1], best[2]+1), nil
}

// parseVersion reads a gallery version name (semver.ParseGallery: the one
// place that grammar is checked).
func parseVersion(s string) ([3]int, bool) {
	v, err := semver.ParseGallery(s)
	if err != nil {
		return [3]int{}, false
	}
	return [3]int{int(v.Major), int(v.Minor), int(v.Patch)}, true
}

func less(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

func tag(tags map[string]*string, k string) string {
	if v, ok := tags[k]; ok && v != nil {
		return *v
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func provisioning(v *armcompute.GalleryImageVersion) string {
	if v.Properties == nil || v.Properties.ProvisioningState == nil {
		return ""
	}
	return string(*v.Properties.ProvisioningState)
}

func hasReader(roles []*armauthorization.RoleAssignment, principal string) bool {
	for _, r := range roles {
		if r == nil || r.Properties == nil {
			continue
		}
		if strings.EqualFold(deref(r.Properties.PrincipalID), principal) &&
			strings.HasSuffix(strings.ToLower(deref(r.Properties.RoleDefinitionID)), readerRoleGUID) {
			return true
		}
	}
	return false
}

// replicationDone reports whether every region of v has replicated.
func replicationDone(v *armcompute.GalleryImageVersion) bool {
	if v.Properties == nil || v.Properties.ReplicationStatus == nil {
		return provisioning(v) == "Succeeded"
	}
	rs := v.Properties.ReplicationStatus
	if rs.AggregatedState != nil {
		return *rs.AggregatedState == armcompute.AggregatedReplicationStateCompleted
	}
	for _, s := range rs.Summary {
		if s == nil || s.State == nil || *s.State != armcompute.ReplicationStateCompleted {
			return false
		}
	}
	return true
}

// regionsOf extracts per-region progress.
func regionsOf(v *armcompute.GalleryImageVersion) []RegionProgress {
	if v == nil || v.Properties == nil || v.Properties.ReplicationStatus == nil {
		return nil
	}
	var out []RegionProgress
	for _, s := range v.Properties.ReplicationStatus.Summary {
		if s == nil {
			continue
		}
		rp := RegionProgress{Region: config.NormalizeLocation(deref(s.Region)), Details: deref(s.Details)}
		if s.State != nil {
			rp.State = string(*s.State)
		}
		if s.Progress != nil {
			rp.Progress = *s.Progress
		}
		out = append(out, rp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Region < out[j].Region })
	return out
}
