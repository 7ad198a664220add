package azure

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"imgpipe/internal/config"
)

// KindRegion is one target region of a gallery version (a copy in Made; in
// a plan, only the keep line of a replicated region the file leaves out).
const KindRegion Kind = "region"

// Made is one copy of the image in Azure, as a publish made or found it:
// what it is, where, what identifies its content, and its state. The
// caller records these (imgpipe's catalog) without reading Azure again.
type Made struct {
	Kind     Kind   `json:"kind"`
	ID       string `json:"id"`
	Location string `json:"location,omitempty"`
	// Fingerprint identifies the content: "md5:B64 size:N" for a blob or
	// managed disk, "created:TIME" for a managed image, the source digest
	// for a gallery version.
	Fingerprint string `json:"fingerprint,omitempty"`
	// State is Azure's: Succeeded, Deleted, a provisioning state, or for
	// a region its replication state (Completed, Replicating, Failed).
	State string `json:"state"`
	// Parent is the ID of the copy this one was made from; "" for the
	// source file.
	Parent string `json:"parent,omitempty"`
	// Detail: a gallery version's tags; a region's progress and details.
	Detail map[string]any `json:"detail,omitempty"`
}

// Copy states Made uses beside Azure's own.
const (
	StateSucceeded = "Succeeded"
	StateDeleted   = "Deleted"
)

// observeSources notes which sources of an existing version (named in its
// tags) no longer exist, so the copies a publish reports say so.
func (p *Publisher) observeSources(ctx context.Context, plan *Plan, tags map[string]*string) error {
	st, a := plan.st, plan.d.Azure
	st.gone = map[string]bool{}
	if img := tag(tags, TagImageID); img != "" {
		ok, err := p.SourceExists(ctx, img)
		if err != nil {
			return fmt.Errorf("read managed image %s: %w", img, err)
		}
		st.gone[img] = !ok
	}
	if d := tag(tags, TagDiskID); d != "" {
		ok, err := p.SourceExists(ctx, d)
		if err != nil {
			return fmt.Errorf("read managed disk %s: %w", d, err)
		}
		st.gone[d] = !ok
	}
	if u := tag(tags, TagBlobURL); u != "" && p.Blobs != nil {
		b, err := p.Blobs.Stat(ctx, u)
		if err != nil {
			return fmt.Errorf("read blob %s: %w", u, err)
		}
		st.gone[u] = b == nil
	}
	_ = a
	return nil
}

// copies lists the copies in Azure after applying plan: from what the
// steps made (ap) and what the plan found.
func (plan *Plan) copies(ap *applied, res *Result) []Made {
	a, st := plan.d.Azure, plan.st
	loc := config.NormalizeLocation(a.Location)
	vtags := ap.version
	if vtags == nil && st.version != nil {
		vtags = st.version.Tags
	}
	blobURL, diskID, imageID, imageTime := ap.blobURL, ap.diskID, ap.imageID, ap.imageTime
	bp := ap.print()
	if vtags != nil {
		if blobURL == "" {
			blobURL = tag(vtags, TagBlobURL)
		}
		if diskID == "" {
			diskID = tag(vtags, TagDiskID)
		}
		if imageID == "" {
			imageID, imageTime = tag(vtags, TagImageID), tag(vtags, TagImageCreated)
		}
		if bp.empty() {
			bp = printFromTags(vtags)
		}
	}
	state := func(id string, deleted bool) string {
		if deleted || st.gone[id] {
			return StateDeleted
		}
		return StateSucceeded
	}
	fp := bp.String()
	var out []Made
	parent := ""
	if blobURL != "" {
		id := withoutQuery(blobURL)
		out = append(out, Made{Kind: KindBlob, ID: id, Location: loc, Fingerprint: fp, State: state(blobURL, false)})
		parent = id
	}
	if diskID != "" {
		out = append(out, Made{Kind: KindDisk, ID: diskID, Location: loc, Fingerprint: fp, State: state(diskID, ap.deleted[KindDisk])})
		parent = diskID
	}
	if imageID != "" {
		out = append(out, Made{Kind: KindManagedImage, ID: imageID, Location: loc, Fingerprint: "created:" + imageTime,
			State: state(imageID, ap.deleted[KindManagedImage]), Parent: parent})
		parent = imageID
	}
	if vtags == nil {
		return out // the version was not made (yet)
	}
	vstate := plan.lastState
	if vstate == "" && st.version != nil && ap.version == nil {
		vstate = provisioning(st.version)
	}
	if vstate == "" {
		vstate = "Creating"
	}
	detail := map[string]any{}
	for k, v := range vtags {
		if v != nil {
			detail[k] = *v
		}
	}
	vfp := tag(vtags, TagSourceDigest)
	if plan.d != nil && plan.d.Source != nil && plan.d.Source.Is(vfp) {
		vfp = plan.d.Source.Digest // one notion in the lineage, also for a version an earlier release tagged
	}
	out = append(out, Made{Kind: KindVersion, ID: plan.VersionID, Location: loc, Fingerprint: vfp,
		State: vstate, Parent: parent, Detail: detail})
	regions := res.Regions
	if len(regions) == 0 && ap.version == nil {
		regions = regionsOf(st.version)
	}
	for _, r := range regions {
		out = append(out, Made{Kind: KindRegion, ID: plan.VersionID + "#" + r.Region, Location: r.Region, State: r.State, Parent: plan.VersionID,
			Detail: map[string]any{"replication_state": r.State, "progress": r.Progress, "details": r.Details}})
	}
	return out
}

// withoutQuery drops a URL's query (a SAS) and fragment.
func withoutQuery(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.RawQuery, p.Fragment = "", ""
		return p.String()
	}
	s, _, _ := strings.Cut(u, "?")
	return s
}
