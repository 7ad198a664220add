package azure

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

// The actions of a plan.
const (
	ActCreate    Action = "create"
	ActKeep      Action = "keep"
	ActUpdate    Action = "update"
	ActReplicate Action = "replicate"
	ActShare     Action = "share"
	ActDelete    Action = "delete"
	ActUpload    Action = "upload"
	ActWait      Action = "wait" // watch a replication already running
)

// The resource kinds of a plan.
const (
	KindResourceGroup  Kind = "resource_group"
	KindBlob           Kind = "blob"
	KindManagedImage   Kind = "managed_image"
	KindGallery        Kind = "gallery"
	KindDefinition     Kind = "definition"
	KindVersion        Kind = "version"
	KindReplication    Kind = "replication"
	KindRoleAssignment Kind = "role_assignment"
	KindVM             Kind = "virtual_machine"
	KindDisk           Kind = "managed_disk"
)

// planOnce reads the current state and decides the steps. It changes
// nothing. (Plan, in converge.go, retries it.)
func (p *Publisher) planOnce(ctx context.Context, d *Desired) (*Plan, error) {
	st, err := p.observe(ctx, d)
	if err != nil {
		return nil, err
	}
	a := d.Azure
	plan := &Plan{Target: a.Name, Image: d.Image.Name, Source: d.Source, d: d, st: st}

	// The generation: from the file, from the disk; a conflict is an error.
	gen := d.Image.HyperVGeneration
	if d.Source != nil && d.Source.Generation != "" {
		if gen != "" && gen != d.Source.Generation {
			return nil, planErrorf("image %q: the pipeline file says hyperv_generation = %q but the disk %s is %s (%s); fix the file or the build",
				d.Image.Name, gen, d.Source.Path, d.Source.Generation, genWords(d.Source.Generation))
		}
		gen = d.Source.Generation
	}
	if gen == "" {
		if d.Source != nil {
			return nil, planErrorf("image %q: %s; set hyperv_generation in the image block", d.Image.Name, d.Source.GenerationErr)
		}
		gen = "(from the build)"
	}
	plan.Generation = gen
	if err := checkSecurity(d, gen); err != nil {
		return nil, err
	}

	version, err := resolveVersion(d, st.versions)
	if err != nil {
		return nil, err
	}
	plan.Version = version
	id := d.id(version)
	plan.VersionID = id.String()
	for _, v := range st.versions {
		if v != nil && v.Name != nil && *v.Name == version {
			full, err := p.Clients.Versions.Get(ctx, a.ResourceGroup, a.Gallery, a.Definition, version,
				&armcompute.GalleryImageVersionsClientGetOptions{Expand: to.Ptr(armcompute.ReplicationStatusTypesReplicationStatus)})
			if ok, err := get(err); err != nil {
				return nil, fmt.Errorf("read version %s: %w", version, err)
			} else if ok {
				st.version = &full.GalleryImageVersion
			}
		}
	}
	add := func(s Step) { plan.Steps = append(plan.Steps, s) }
	warnLoc := func(kind, name string, loc *string) {
		if loc != nil && config.NormalizeLocation(*loc) != a.Location {
			plan.Warnings = append(plan.Warnings, fmt.Sprintf("%s %s is in %s, not in %s like the rest (allowed, but keeping them in one location is advised)",
				kind, name, config.NormalizeLocation(*loc), a.Location))
		}
	}

	// resource group
	if st.rg == nil {
		add(Step{Action: ActCreate, Kind: KindResourceGroup, Name: a.ResourceGroup, Changes: []string{"location " + a.Location}})
	} else {
		add(Step{Action: ActKeep, Kind: KindResourceGroup, Name: a.ResourceGroup, ID: deref(st.rg.ID)})
		warnLoc("resource group", a.ResourceGroup, st.rg.Location)
	}
	// gallery
	galleryID := id.GalleryID()
	if st.gallery == nil {
		add(Step{Action: ActCreate, Kind: KindGallery, Name: a.Gallery, ID: galleryID})
	} else {
		add(Step{Action: ActKeep, Kind: KindGallery, Name: a.Gallery, ID: galleryID})
		warnLoc("gallery", a.Gallery, st.gallery.Location)
	}
	// definition
	defID := id.DefinitionID()
	if st.def == nil {
		if st.gallery != nil {
			if err := p.checkIdentifier(ctx, d); err != nil {
				return nil, err
			}
		}
		pub, offer, sku := d.identifier()
		ch := []string{"hyperVGeneration " + gen, "osType " + d.Image.OSType, "osState " + d.Image.OSState,
			"architecture " + d.Image.Architecture, "identifier " + pub + "/" + offer + "/" + sku}
		if d.Image.SecurityType == "TrustedLaunch" {
			ch = append(ch, "feature SecurityType=TrustedLaunch")
		}
		add(Step{Action: ActCreate, Kind: KindDefinition, Name: a.Definition, ID: defID, Changes: ch})
	} else {
		if err := checkDefinition(d, st.def, gen); err != nil {
			return nil, err
		}
		add(Step{Action: ActKeep, Kind: KindDefinition, Name: a.Definition, ID: defID})
		warnLoc("definition", a.Definition, st.def.Location)
	}

	// version and its sources
	v := st.version
	needSource := false
	if v != nil {
		state := provisioning(v)
		switch {
		case state == "Failed":
			add(Step{Action: ActDelete, Kind: KindVersion, Name: version, ID: id.String(), Reason: "left in Failed state by an earlier run; it is made again"})
			needSource = true
		case d.Source != nil && !d.Source.Is(tag(v.Tags, TagSourceDigest)):
			made := tag(v.Tags, TagSourceDigest)
			if made == "" {
				made = "a source imgpipe did not record"
			}
			return nil, planErrorf("version %s of %s already exists, made from %s; this disk is %s. Versions are immutable: bump the version (or use version = \"next-patch\")",
				version, a.Definition, made, d.Source.Digest)
		default:
			warnLoc("version", version, v.Location)
			if err := p.observeSources(ctx, plan, v.Tags); err != nil {
				return nil, err
			}
			p.planExistingVersion(plan, v, state)
		}
	} else {
		needSource = true
	}
	if needSource {
		if err := p.checkStorage(ctx, d); err != nil {
			return nil, err
		}
		if err := p.planSources(ctx, plan, version); err != nil {
			return nil, err
		}
		add(Step{Action: ActCreate, Kind: KindVersion, Name: version, ID: id.String(), Changes: regionChanges(a.TargetRegions)})
		add(Step{Action: ActWait, Kind: KindReplication, Name: version, ID: id.String(), Reason: fmt.Sprintf("until every region has replicated (at most %s)", a.ReplicationTimeout)})
		if a.ManagedImage && !a.KeepManagedImage {
			add(Step{Action: ActDelete, Kind: KindManagedImage, Name: d.imageName(version), Reason: "keep_managed_image = false: removed once the version has replicated"})
		}
	}

	// shares
	for i := range a.Shares {
		sh := &a.Shares[i]
		name := fmt.Sprintf("Reader on %s for %s (subscription %s)", a.Gallery, sh.PrincipalID, sh.Subscription)
		if hasReader(st.roles, sh.PrincipalID) {
			add(Step{Action: ActKeep, Kind: KindRoleAssignment, Name: name})
		} else {
			add(Step{Action: ActShare, Kind: KindRoleAssignment, Name: name, share: sh})
		}
	}
	for _, w := range plan.Warnings {
		slog.Warn("azure: " + w)
	}
	return plan, nil
}

func genWords(g string) string {
	if g == "V2" {
		return "UEFI boot, generation 2"
	}
	return "BIOS boot, generation 1"
}

func regionChanges(regions []config.TargetRegion) []string {
	var out []string
	for _, r := range regions {
		out = append(out, fmt.Sprintf("region %s x%d %s", r.Name, r.Replicas, r.StorageAccountType))
	}
	return out
}

// checkDefinition compares the immutable properties of an existing definition
// with what the file and the disk ask for.
func checkDefinition(d *Desired, def *armcompute.GalleryImage, gen string) error {
	var errs []string
	pr := def.Properties
	if pr == nil {
		pr = &armcompute.GalleryImageProperties{}
	}
	name := d.Azure.Definition
	have := func(p *string) string {
		if p == nil {
			return "(not set)"
		}
		return *p
	}
	if pr.HyperVGeneration != nil && !strings.HasPrefix(gen, "(") && string(*pr.HyperVGeneration) != gen {
		why := "the disk is " + gen
		if d.Source == nil || d.Source.Generation == "" {
			why = "the pipeline file says " + gen
		}
		return planErrorf("definition %s has hyperVGeneration %s but %s (%s): a generation %s disk cannot be published into a %s definition. "+
			"Nothing was uploaded. Definitions are immutable: publish to a new definition (hyperVGeneration %s)",
			name, *pr.HyperVGeneration, why, genWords(gen), strings.TrimPrefix(gen, "V"), *pr.HyperVGeneration, gen)
	}
	cmp := func(prop, got, want string) {
		if !strings.EqualFold(got, want) {
			errs = append(errs, fmt.Sprintf("%s is %s in Azure but %s in the pipeline file", prop, got, want))
		}
	}
	if pr.OSType != nil {
		cmp("osType", string(*pr.OSType), d.Image.OSType)
	}
	if pr.OSState != nil {
		cmp("osState", string(*pr.OSState), d.Image.OSState)
	}
	if pr.Architecture != nil {
		cmp("architecture", string(*pr.Architecture), d.Image.Architecture)
	}
	sec := "Standard"
	for _, f := range pr.Features {
		if f != nil && strings.EqualFold(deref(f.Name), "SecurityType") && f.Value != nil {
			sec = *f.Value
		}
	}
	if !strings.EqualFold(sec, d.Image.SecurityType) && !(d.Image.SecurityType == "Standard" && strings.EqualFold(sec, "TrustedLaunchSupported")) {
		errs = append(errs, fmt.Sprintf("security type is %s in Azure but %s in the pipeline file", sec, d.Image.SecurityType))
	}
	if id := pr.Identifier; id != nil {
		if d.Image.Publisher != "" {
			cmp("publisher", have(id.Publisher), d.Image.Publisher)
		}
		if d.Image.Offer != "" {
			cmp("offer", have(id.Offer), d.Image.Offer)
		}
		if d.Image.SKU != "" {
			cmp("sku", have(id.SKU), d.Image.SKU)
		}
	}
	if len(errs) > 0 {
		return planErrorf("definition %s exists with different immutable properties: %s. Definitions cannot change: fix the pipeline file or publish to a new definition",
			name, strings.Join(errs, "; "))
	}
	return nil
}

// planSources adds the steps that produce the version's source: the blob
// (kept when it already holds this disk) and the managed image.
func (p *Publisher) planSources(ctx context.Context, plan *Plan, version string) error {
	d, st := plan.d, plan.st
	a := d.Azure
	if a.Upload == "disk" {
		return p.planDisk(ctx, plan, version)
	}
	if d.Source == nil {
		plan.Steps = append(plan.Steps, Step{Action: ActUpload, Kind: KindBlob, Name: d.blobName(version), ID: d.blobURL(version), Reason: "after the build"})
		if a.ManagedImage {
			plan.Steps = append(plan.Steps, Step{Action: ActCreate, Kind: KindManagedImage, Name: d.imageName(version)})
		}
		return nil
	}
	imgName := d.imageName(version)
	if a.ManagedImage && st.rg != nil {
		img, err := p.Clients.Images.Get(ctx, a.ResourceGroup, imgName, nil)
		if ok, err := get(err); err != nil {
			return fmt.Errorf("read managed image %s: %w", imgName, err)
		} else if ok {
			st.image = &img.Image
			if got := tag(img.Tags, TagSourceDigest); !d.Source.Is(got) {
				return planErrorf("managed image %s already exists but was made from %s, not from this disk (%s); delete it or bump the version",
					imgName, orUnknown(got), d.Source.Digest)
			}
		}
	}
	imageID := ResourceID{Subscription: a.Subscription, ResourceGroup: a.ResourceGroup, Image: imgName}.String()
	if st.image != nil {
		// The image exists and holds this disk: the blob is not needed again.
		plan.Steps = append(plan.Steps, Step{Action: ActKeep, Kind: KindManagedImage, Name: imgName, ID: imageID})
		return nil
	}
	blobURL := d.blobURL(version)
	if p.Blobs != nil {
		b, err := p.Blobs.Stat(ctx, blobURL)
		if err != nil {
			return fmt.Errorf("read blob %s: %w", blobURL, err)
		}
		st.blob = b
	}
	if st.blob != nil && d.Source.Is(st.blob.Metadata[metaDigest]) && st.blob.Size == d.Source.VHDSize {
		plan.Steps = append(plan.Steps, Step{Action: ActKeep, Kind: KindBlob, Name: d.blobName(version), ID: blobURL, Reason: "already holds this disk"})
	} else {
		reason := ""
		if st.blob != nil {
			reason = "the blob exists but does not hold this disk (or its upload did not finish): uploaded again"
		}
		plan.Steps = append(plan.Steps, Step{Action: ActUpload, Kind: KindBlob, Name: d.blobName(version), ID: blobURL, Reason: reason,
			Changes: []string{fmt.Sprintf("%d bytes (fixed VHD)", d.Source.VHDSize)}})
	}
	if a.ManagedImage {
		plan.Steps = append(plan.Steps, Step{Action: ActCreate, Kind: KindManagedImage, Name: imgName, ID: imageID})
	}
	return nil
}

func orUnknown(s string) string {
	if s == "" {
		return "an unrecorded source"
	}
	return s
}

// planExistingVersion compares a healthy version with the file.
func (p *Publisher) planExistingVersion(plan *Plan, v *armcompute.GalleryImageVersion, state string) {
	a := plan.d.Azure
	id := plan.VersionID
	plan.Steps = append(plan.Steps, Step{Action: ActKeep, Kind: KindVersion, Name: plan.Version, ID: id, Reason: "made from this disk"})
	pp := &armcompute.GalleryImageVersionPublishingProfile{}
	if v.Properties != nil && v.Properties.PublishingProfile != nil {
		pp = v.Properties.PublishingProfile
	}
	have := map[string]*armcompute.TargetRegion{}
	for _, r := range pp.TargetRegions {
		if r != nil && r.Name != nil {
			have[config.NormalizeLocation(*r.Name)] = r
		}
	}
	var added, changed []string
	for _, want := range a.TargetRegions {
		got, ok := have[want.Name]
		if !ok {
			added = append(added, fmt.Sprintf("+ region %s x%d %s", want.Name, want.Replicas, want.StorageAccountType))
			continue
		}
		if got.RegionalReplicaCount != nil && *got.RegionalReplicaCount != want.Replicas {
			changed = append(changed, fmt.Sprintf("~ region %s replicas %d -> %d", want.Name, *got.RegionalReplicaCount, want.Replicas))
		}
		if got.StorageAccountType != nil && !strings.EqualFold(string(*got.StorageAccountType), want.StorageAccountType) {
			changed = append(changed, fmt.Sprintf("~ region %s storage %s -> %s", want.Name, *got.StorageAccountType, want.StorageAccountType))
		}
	}
	wantRegions := map[string]bool{}
	for _, r := range a.TargetRegions {
		wantRegions[r.Name] = true
	}
	var extra []string
	for name := range have {
		if !wantRegions[name] {
			extra = append(extra, name)
		}
	}
	sort.Strings(extra)
	for _, r := range extra {
		// never dropped by omission: an update sends these back (keepRegions)
		plan.Steps = append(plan.Steps, Step{Action: ActKeep, Kind: KindRegion, Name: r, ID: id,
			Reason: "replicated but not in the pipeline file: kept (imgpipe never drops a region by omission; remove it with imgpipe replicate --remove-region " + r + ")"})
	}
	if a.ExcludeFromLatest && (pp.ExcludeFromLatest == nil || !*pp.ExcludeFromLatest) { // otherwise promotion owns it (staging.go)
		changed = append(changed, fmt.Sprintf("~ exclude_from_latest -> %v", a.ExcludeFromLatest))
	}
	var eol time.Time
	if pp.EndOfLifeDate != nil {
		eol = pp.EndOfLifeDate.UTC()
	}
	if !eol.Equal(a.EndOfLife) {
		changed = append(changed, fmt.Sprintf("~ end_of_life -> %s", fmtDate(a.EndOfLife)))
	}
	if len(added) > 0 {
		plan.Steps = append(plan.Steps, Step{Action: ActReplicate, Kind: KindVersion, Name: plan.Version, ID: id, Changes: append(added, changed...),
			Reason: "new target regions are copied from the version's source, which must still be the one it was made from"})
	} else if len(changed) > 0 {
		plan.Steps = append(plan.Steps, Step{Action: ActUpdate, Kind: KindVersion, Name: plan.Version, ID: id, Changes: changed})
	}
	if len(added) > 0 || len(changed) > 0 || state != "Succeeded" || !replicationDone(v) {
		reason := "replication still running: resume watching"
		if len(added) > 0 || len(changed) > 0 {
			reason = "until every region has replicated"
		}
		plan.Steps = append(plan.Steps, Step{Action: ActWait, Kind: KindReplication, Name: plan.Version, ID: id, Reason: reason})
	}
	if a.ManagedImage && !a.KeepManagedImage {
		if img := tag(v.Tags, TagImageID); img != "" {
			if rid, err := ParseResourceID(img); err == nil {
				// removed only if it still exists (checked when applied)
				plan.Steps = append(plan.Steps, Step{Action: ActDelete, Kind: KindManagedImage, Name: rid.Image, ID: img,
					Reason: "keep_managed_image = false (if it still exists)"})
			}
		}
	}
}

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return "(none)"
	}
	return t.Format("2006-01-02")
}

// planDisk adds the steps of a direct upload to a managed disk: kept when it
// already holds this disk, deleted first when an earlier upload did not finish.
func (p *Publisher) planDisk(ctx context.Context, plan *Plan, version string) error {
	d, st := plan.d, plan.st
	name, id := d.imageName(version), d.diskID(version)
	if d.Source == nil {
		plan.Steps = append(plan.Steps, Step{Action: ActUpload, Kind: KindDisk, Name: name, ID: id, Reason: "after the build"})
		return nil
	}
	if st.rg != nil {
		got, err := p.Clients.Disks.Get(ctx, d.Azure.ResourceGroup, name, nil)
		if ok, err := get(err); err != nil {
			return fmt.Errorf("read managed disk %s: %w", name, err)
		} else if ok {
			st.disk = &got.Disk
		}
	}
	if st.disk != nil {
		state := ""
		if st.disk.Properties != nil && st.disk.Properties.DiskState != nil {
			state = string(*st.disk.Properties.DiskState)
		}
		switch got := tag(st.disk.Tags, TagSourceDigest); {
		case d.Source.Is(got) && state != string(armcompute.DiskStateReadyToUpload) && state != string(armcompute.DiskStateActiveUpload):
			plan.Steps = append(plan.Steps, Step{Action: ActKeep, Kind: KindDisk, Name: name, ID: id, Reason: "already holds this disk"})
			return nil
		case got != "" && !d.Source.Is(got):
			return planErrorf("managed disk %s already exists and holds %s, not this disk (%s); delete it or bump the version", name, got, d.Source.Digest)
		default:
			plan.Steps = append(plan.Steps, Step{Action: ActDelete, Kind: KindDisk, Name: name, ID: id,
				Reason: "an earlier upload into it did not finish (" + state + "): made again"})
		}
	}
	plan.Steps = append(plan.Steps, Step{Action: ActUpload, Kind: KindDisk, Name: name, ID: id,
		Changes: []string{fmt.Sprintf("%d bytes (fixed VHD), direct upload", d.Source.VHDSize)}})
	return nil
}
