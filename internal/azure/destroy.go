package azure

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// DestroyPlan is what destroy will remove, in order: versions, then the
// sources no remaining version needs (managed images, blobs), then
// definitions, then imgpipe's role assignments and the gallery.
type DestroyPlan struct {
	Target   string   `json:"target"`
	Steps    []Step   `json:"steps"`
	Warnings []string `json:"warnings,omitempty"`
	Force    bool     `json:"force"`
}

// HasChanges reports whether the plan deletes anything.
func (p *DestroyPlan) HasChanges() bool {
	for _, s := range p.Steps {
		if s.Action == ActDelete {
			return true
		}
	}
	return false
}

// Text renders the destroy plan.
func (p *DestroyPlan) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Destroy plan for %s\n\n", p.Target)
	n := 0
	for _, s := range p.Steps {
		if s.Action == ActDelete {
			n++
		}
		fmt.Fprintf(&b, "  %s %-6s %-15s %s", symbol(s.Action), s.Action, s.Kind, s.Name)
		if s.Reason != "" {
			fmt.Fprintf(&b, "  (%s)", s.Reason)
		}
		b.WriteString("\n")
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "\nwarning: %s\n", w)
	}
	fmt.Fprintf(&b, "\nDestroy: %d to delete.\n", n)
	return b.String()
}

type versionInfo struct {
	id   ResourceID
	v    *armcompute.GalleryImageVersion
	gone bool // deleted by this plan
}

// users maps lower-case image reference ids to the VMs and scale sets using them.
func (p *Publisher) users(ctx context.Context) (map[string][]string, error) {
	out := map[string][]string{}
	if p.Clients.VMs != nil {
		pager := p.Clients.VMs.NewListAllPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list virtual machines: %w", err)
			}
			for _, vm := range page.Value {
				if vm != nil && vm.Properties != nil && vm.Properties.StorageProfile != nil && vm.Properties.StorageProfile.ImageReference != nil {
					if ref := deref(vm.Properties.StorageProfile.ImageReference.ID); ref != "" {
						out[strings.ToLower(ref)] = append(out[strings.ToLower(ref)], "VM "+deref(vm.ID))
					}
				}
			}
		}
	}
	if p.Clients.ScaleSets != nil {
		pager := p.Clients.ScaleSets.NewListAllPager(nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list scale sets: %w", err)
			}
			for _, ss := range page.Value {
				if ss == nil || ss.Properties == nil || ss.Properties.VirtualMachineProfile == nil || ss.Properties.VirtualMachineProfile.StorageProfile == nil {
					continue
				}
				if r := ss.Properties.VirtualMachineProfile.StorageProfile.ImageReference; r != nil && deref(r.ID) != "" {
					out[strings.ToLower(*r.ID)] = append(out[strings.ToLower(*r.ID)], "scale set "+deref(ss.ID))
				}
			}
		}
	}
	return out, nil
}

// planDestroyOnce decides what destroying id (a gallery, definition or version)
// removes. A version still used by a VM or scale set is kept (and so are its
// parents) unless force.
func (p *Publisher) planDestroyOnce(ctx context.Context, id ResourceID, force bool) (*DestroyPlan, error) {
	kind := id.Kind()
	if kind != "gallery" && kind != "definition" && kind != "version" {
		return nil, fmt.Errorf("destroy takes a gallery, definition or version id, not %s", id)
	}
	c := p.Clients
	dp := &DestroyPlan{Target: id.String(), Force: force}
	if _, err := c.Galleries.Get(ctx, id.ResourceGroup, id.Gallery, nil); err != nil {
		if isNotFound(err) {
			dp.Warnings = append(dp.Warnings, "gallery "+id.Gallery+" does not exist: nothing to destroy")
			return dp, nil
		}
		return nil, fmt.Errorf("read gallery %s: %w", id.Gallery, err)
	}
	// Every definition and version of the gallery: the ones that remain may
	// still need a source.
	var defs []string
	pager := c.Definitions.NewListByGalleryPager(id.ResourceGroup, id.Gallery, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list definitions of %s: %w", id.Gallery, err)
		}
		for _, d := range page.Value {
			if d != nil && d.Name != nil {
				defs = append(defs, *d.Name)
			}
		}
	}
	sort.Strings(defs)
	if kind != "gallery" && !containsFold(defs, id.Definition) {
		dp.Warnings = append(dp.Warnings, "definition "+id.Definition+" does not exist: nothing to destroy")
		return dp, nil
	}
	var all []*versionInfo
	for _, def := range defs {
		vp := c.Versions.NewListByGalleryImagePager(id.ResourceGroup, id.Gallery, def, nil)
		for vp.More() {
			page, err := vp.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list versions of %s: %w", def, err)
			}
			for _, v := range page.Value {
				if v == nil || v.Name == nil {
					continue
				}
				vid := ResourceID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup, Gallery: id.Gallery, Definition: def, Version: *v.Name}
				all = append(all, &versionInfo{id: vid, v: v})
			}
		}
	}
	inScope := func(v ResourceID) bool {
		switch kind {
		case "gallery":
			return true
		case "definition":
			return strings.EqualFold(v.Definition, id.Definition)
		}
		return strings.EqualFold(v.Definition, id.Definition) && v.Version == id.Version
	}
	if kind == "version" {
		found := false
		for _, v := range all {
			found = found || inScope(v.id)
		}
		if !found {
			dp.Warnings = append(dp.Warnings, "version "+id.Version+" does not exist: nothing to destroy")
			return dp, nil
		}
	}
	users, err := p.users(ctx)
	if err != nil {
		return nil, err
	}
	latest := latestByDefinition(all)
	blockedDefs := map[string]bool{}
	for _, v := range all {
		if !inScope(v.id) {
			continue
		}
		used := users[strings.ToLower(v.id.String())]
		if latest[strings.ToLower(v.id.Definition)] == v.id.Version {
			used = append(used, users[strings.ToLower(v.id.DefinitionID())]...)
		}
		if len(used) > 0 && !force {
			dp.Steps = append(dp.Steps, Step{Action: ActKeep, Kind: KindVersion, Name: v.id.Definition + "/" + v.id.Version, ID: v.id.String(),
				Reason: "still used by " + strings.Join(used, ", ") + "; --force deletes it anyway"})
			blockedDefs[strings.ToLower(v.id.Definition)] = true
			continue
		}
		reason := ""
		if len(used) > 0 {
			reason = "--force: still used by " + strings.Join(used, ", ")
		}
		v.gone = true
		dp.Steps = append(dp.Steps, Step{Action: ActDelete, Kind: KindVersion, Name: v.id.Definition + "/" + v.id.Version, ID: v.id.String(), Reason: reason})
	}
	// Sources: removed only when no remaining version names them.
	needed := map[string]bool{}
	for _, v := range all {
		if !v.gone {
			for _, s := range versionSources(v.v) {
				needed[strings.ToLower(s)] = true
			}
		}
	}
	seen := map[string]bool{}
	for _, v := range all {
		if !v.gone {
			continue
		}
		for _, s := range versionSources(v.v) {
			ls := strings.ToLower(s)
			if seen[ls] {
				continue
			}
			seen[ls] = true
			if needed[ls] {
				dp.Steps = append(dp.Steps, Step{Action: ActKeep, Kind: sourceKind(s), Name: s, ID: s, Reason: "another version still needs it"})
				continue
			}
			step, err := p.planSourceDelete(ctx, s)
			if err != nil {
				return nil, err
			}
			if step != nil {
				dp.Steps = append(dp.Steps, *step)
			}
		}
	}
	// Definitions, then the gallery.
	if kind == "gallery" || kind == "definition" {
		for _, def := range defs {
			if kind == "definition" && !strings.EqualFold(def, id.Definition) {
				continue
			}
			did := ResourceID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup, Gallery: id.Gallery, Definition: def}
			if blockedDefs[strings.ToLower(def)] {
				dp.Steps = append(dp.Steps, Step{Action: ActKeep, Kind: KindDefinition, Name: def, ID: did.String(), Reason: "a version in it is kept"})
				continue
			}
			dp.Steps = append(dp.Steps, Step{Action: ActDelete, Kind: KindDefinition, Name: def, ID: did.String()})
		}
	}
	if kind == "gallery" {
		gid := id.GalleryID()
		rp := c.RoleAssignments.NewListForScopePager(gid, &armauthorization.RoleAssignmentsClientListForScopeOptions{Filter: to.Ptr("atScope()")})
		for rp.More() {
			page, err := rp.NextPage(ctx)
			if err != nil {
				return nil, fmt.Errorf("list role assignments on %s: %w", id.Gallery, err)
			}
			for _, ra := range page.Value {
				if ra == nil || ra.Properties == nil || !SameID(deref(ra.Properties.Scope), gid) ||
					!strings.HasPrefix(deref(ra.Properties.Description), sharePrefix) {
					continue
				}
				dp.Steps = append(dp.Steps, Step{Action: ActDelete, Kind: KindRoleAssignment, Name: "Reader for " + deref(ra.Properties.PrincipalID), ID: deref(ra.ID)})
			}
		}
		if len(blockedDefs) > 0 {
			dp.Steps = append(dp.Steps, Step{Action: ActKeep, Kind: KindGallery, Name: id.Gallery, ID: gid, Reason: "a version in it is kept"})
		} else {
			dp.Steps = append(dp.Steps, Step{Action: ActDelete, Kind: KindGallery, Name: id.Gallery, ID: gid})
		}
	}
	return dp, nil
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		if strings.EqualFold(x, s) {
			return true
		}
	}
	return false
}

func sourceKind(s string) Kind {
	switch {
	case strings.Contains(strings.ToLower(s), "/providers/microsoft.compute/disks/"):
		return KindDisk
	case strings.HasPrefix(s, "/"):
		return KindManagedImage
	}
	return KindBlob
}

// versionSources lists a version's managed image id and blob URL.
func versionSources(v *armcompute.GalleryImageVersion) []string {
	var out []string
	img := tag(v.Tags, TagImageID)
	if pr := v.Properties; pr != nil && pr.StorageProfile != nil {
		if s := pr.StorageProfile.Source; img == "" && s != nil && s.ID != nil {
			if r, err := ParseResourceID(*s.ID); err == nil && r.Kind() == "image" {
				img = *s.ID
			}
		}
	}
	if img != "" {
		out = append(out, img)
	}
	if d := tag(v.Tags, TagDiskID); d != "" {
		out = append(out, d)
	}
	blob := tag(v.Tags, TagBlobURL)
	if pr := v.Properties; blob == "" && pr != nil && pr.StorageProfile != nil && pr.StorageProfile.OSDiskImage != nil &&
		pr.StorageProfile.OSDiskImage.Source != nil && pr.StorageProfile.OSDiskImage.Source.URI != nil {
		blob = *pr.StorageProfile.OSDiskImage.Source.URI
	}
	if blob != "" {
		out = append(out, blob)
	}
	return out
}

// latestByDefinition is the version a definition reference resolves to
// (highest not excluded from latest), per definition (lower case).
func latestByDefinition(all []*versionInfo) map[string]string {
	best := map[string][3]int{}
	out := map[string]string{}
	for _, v := range all {
		if pp := v.v.Properties; pp != nil && pp.PublishingProfile != nil && pp.PublishingProfile.ExcludeFromLatest != nil && *pp.PublishingProfile.ExcludeFromLatest {
			continue
		}
		n, ok := parseVersion(v.id.Version)
		if !ok {
			continue
		}
		d := strings.ToLower(v.id.Definition)
		if b, ok := best[d]; !ok || less(b, n) {
			best[d], out[d] = n, v.id.Version
		}
	}
	return out
}

// planSourceDelete plans removing a source imgpipe made (it carries
// imgpipe's marks); others are left alone.
func (p *Publisher) planSourceDelete(ctx context.Context, s string) (*Step, error) {
	if sourceKind(s) == KindDisk {
		rid, err := arm.ParseResourceID(s)
		if err != nil {
			return nil, nil
		}
		got, err := p.Clients.Disks.Get(ctx, rid.ResourceGroupName, rid.Name, nil)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read managed disk %s: %w", rid.Name, err)
		}
		if tag(got.Tags, TagSourceDigest) == "" {
			return &Step{Action: ActKeep, Kind: KindDisk, Name: rid.Name, ID: s, Reason: "not made by imgpipe"}, nil
		}
		return &Step{Action: ActDelete, Kind: KindDisk, Name: rid.Name, ID: s, Reason: "no remaining version needs it"}, nil
	}
	if sourceKind(s) == KindManagedImage {
		r, err := ParseResourceID(s)
		if err != nil {
			return nil, nil
		}
		img, err := p.Clients.Images.Get(ctx, r.ResourceGroup, r.Image, nil)
		if isNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read managed image %s: %w", r.Image, err)
		}
		if tag(img.Tags, TagSourceDigest) == "" {
			return &Step{Action: ActKeep, Kind: KindManagedImage, Name: r.Image, ID: s, Reason: "not made by imgpipe"}, nil
		}
		return &Step{Action: ActDelete, Kind: KindManagedImage, Name: r.Image, ID: s, Reason: "no remaining version needs it"}, nil
	}
	if p.Blobs == nil {
		return &Step{Action: ActKeep, Kind: KindBlob, Name: s, ID: s, Reason: "no storage access configured"}, nil
	}
	b, err := p.Blobs.Stat(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("read blob %s: %w", s, err)
	}
	if b == nil {
		return nil, nil
	}
	if b.Metadata[metaDigest] == "" {
		return &Step{Action: ActKeep, Kind: KindBlob, Name: s, ID: s, Reason: "not uploaded by imgpipe"}, nil
	}
	return &Step{Action: ActDelete, Kind: KindBlob, Name: s, ID: s, Reason: "no remaining version needs it"}, nil
}

// destroyOnce carries out a destroy plan in its order, each operation awaited.
// A failure does not stop the independent deletions: every failure is
// returned together (errors.Join); parents of something that failed are
// not attempted.
// Steps whose ids are in done are skipped; each step that succeeds is
// added to it.
func (p *Publisher) destroyOnce(ctx context.Context, dp *DestroyPlan, done map[string]bool) error {
	var errs []error
	failedDefs := map[string]bool{}
	failedAny := false
	c := p.Clients
	for i := range dp.Steps {
		s := &dp.Steps[i]
		if s.Action != ActDelete || done[s.ID] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return errors.Join(append(errs, err)...)
		}
		p.emit(Event{Step: s, Phase: "start"})
		var err error
		switch s.Kind {
		case KindVersion:
			r, _ := ParseResourceID(s.ID)
			err = p.deleteVersion(ctx, r, func() {})
			if err != nil {
				failedDefs[strings.ToLower(r.Definition)] = true
			}
		case KindManagedImage:
			r, _ := ParseResourceID(s.ID)
			err = p.deleteImage(ctx, r.ResourceGroup, r.Image, nil)
		case KindBlob:
			err = p.Blobs.Delete(ctx, s.ID)
		case KindDisk:
			rid, perr := arm.ParseResourceID(s.ID)
			if perr != nil {
				err = perr
				break
			}
			err = p.deleteDisk(ctx, rid.ResourceGroupName, rid.Name, nil)
		case KindDefinition:
			r, _ := ParseResourceID(s.ID)
			if failedDefs[strings.ToLower(r.Definition)] {
				err = fmt.Errorf("not deleted: a version in it could not be deleted")
				failedAny = true
				break
			}
			err = awaitDelete(ctx, p, "delete definition "+r.Definition, nil, func(ctx context.Context) (*runtime.Poller[armcompute.GalleryImagesClientDeleteResponse], error) {
				return c.Definitions.BeginDelete(ctx, r.ResourceGroup, r.Gallery, r.Definition, nil)
			})
		case KindRoleAssignment:
			_, err = c.RoleAssignments.DeleteByID(ctx, s.ID, nil)
		case KindGallery:
			if failedAny || len(failedDefs) > 0 {
				err = fmt.Errorf("not deleted: something in it could not be deleted")
				break
			}
			r, _ := ParseResourceID(s.ID)
			err = awaitDelete(ctx, p, "delete gallery "+r.Gallery, nil, func(ctx context.Context) (*runtime.Poller[armcompute.GalleriesClientDeleteResponse], error) {
				return c.Galleries.BeginDelete(ctx, r.ResourceGroup, r.Gallery, nil)
			})
		}
		if isNotFound(err) {
			err = nil
		}
		if err != nil {
			if s.Kind == KindDefinition {
				failedAny = true
			}
			errs = append(errs, fmt.Errorf("delete %s %s: %w", s.Kind, s.Name, err))
			continue
		}
		done[s.ID] = true
		if p.Recorder != nil {
			_ = p.Recorder.RecordStep(ctx, StepRecord{Action: ActDelete, Kind: s.Kind, Name: s.Name, ResourceID: s.ID, Status: "done"})
		}
		p.emit(Event{Step: s, Phase: "done"})
	}
	return errors.Join(errs...)
}
