package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
)

// AzurePuller lists the VMs and scale sets of subscriptions and records the
// ones whose imageReference points at a gallery image (version, or the
// definition = its latest version) as hosts with platform azure, so hosts
// without an agent still show how stale their image is.
type AzurePuller struct {
	Subscriptions []string
	Credential    azcore.TokenCredential
	ClientOptions *arm.ClientOptions
	// Timeout bounds one pull (default 5 minutes).
	Timeout time.Duration
}

// PullResult says what a pull saw and did.
type PullResult struct {
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Machines []AzureVM `json:"machines"`
	Skipped  int       `json:"skipped"` // VMs and scale sets not made from a gallery image
	Removed  []string  `json:"removed,omitempty"`
	Errors   []string  `json:"errors,omitempty"`
}

// AzureVM is one VM or scale set that runs a gallery image.
type AzureVM struct {
	Host       string `json:"host"`
	Kind       string `json:"kind"` // vm or vmss
	ResourceID string `json:"resource_id"`
	Location   string `json:"location,omitempty"`
	ImageRef   string `json:"image_reference"`
	Image      string `json:"image,omitempty"`
	Version    string `json:"version,omitempty"`
	Resolved   string `json:"resolved"` // catalog copy, exact version, latest in catalog, parsed from the id
}

// galleryRef is a parsed gallery image (version) id.
type galleryRef struct {
	definitionID string // lower case, up to /images/<def>
	definition   string
	version      string // empty: the definition (latest)
}

// parseGalleryRef reads a gallery image (version) id with internal/azure's
// resource id parser, the one imgpipe reads ARM ids with.
func parseGalleryRef(id string) (galleryRef, bool) {
	r, err := azure.ParseResourceID(id)
	if err != nil || r.Gallery == "" || r.Definition == "" {
		return galleryRef{}, false
	}
	return galleryRef{definitionID: strings.ToLower(r.DefinitionID()), definition: r.Definition, version: r.Version}, true
}

// copyIndex maps the catalog's gallery versions (and managed images) to
// versions, by lower-case resource id.
type copyIndex struct {
	byID  map[string]catalog.Ref
	byDef map[string][]catalog.Version // definition id -> usable versions
}

func buildCopyIndex(ctx context.Context, c *catalog.Catalog) (*copyIndex, error) {
	ix := &copyIndex{byID: map[string]catalog.Ref{}, byDef: map[string][]catalog.Version{}}
	imgs, err := c.Images(ctx)
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		vs, err := c.Versions(ctx, img.Name)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			copies, err := c.Copies(ctx, v.Ref())
			if err != nil {
				return nil, err
			}
			for _, cp := range copies {
				if cp.Kind != catalog.KindGalleryVersion && cp.Kind != catalog.KindManagedImage {
					continue
				}
				id := strings.ToLower(cp.ResourceID)
				ix.byID[id] = v.Ref()
				if cp.Kind == catalog.KindGalleryVersion && v.Status == catalog.StatusActive && cp.State != catalog.StateDeleted {
					if g, ok := parseGalleryRef(id); ok {
						ix.byDef[g.definitionID] = append(ix.byDef[g.definitionID], v)
					}
				}
			}
		}
	}
	return ix, nil
}

// resolve maps an image reference to a catalog version.
func (ix *copyIndex) resolve(id, exactVersion string) (catalog.Ref, string, bool) {
	lid := strings.ToLower(id)
	if ref, ok := ix.byID[lid]; ok {
		return ref, "catalog copy", true
	}
	g, ok := parseGalleryRef(id)
	if !ok {
		return catalog.Ref{}, "", false
	}
	if g.version == "" && exactVersion != "" {
		if ref, ok := ix.byID[g.definitionID+"/versions/"+strings.ToLower(exactVersion)]; ok {
			return ref, "exact version of latest", true
		}
		return catalog.Ref{Image: g.definition, Version: exactVersion}, "exact version (not in catalog)", true
	}
	if g.version == "" {
		var best *catalog.Version
		for i, v := range ix.byDef[g.definitionID] {
			if best == nil || catalog.CompareVersions(v.Version, best.Version) > 0 {
				best = &ix.byDef[g.definitionID][i]
			}
		}
		if best != nil {
			return best.Ref(), "latest in catalog", true
		}
		return catalog.Ref{Image: g.definition}, "latest (no version in catalog)", true
	}
	return catalog.Ref{Image: g.definition, Version: g.version}, "parsed from id (not in catalog)", true
}

// Pull lists every subscription's VMs and scale sets and records them in c.
// Hosts recorded by an earlier pull that are gone are removed; hosts whose
// agent reports keep their report (only the resource id is added).
func (p *AzurePuller) Pull(ctx context.Context, c *catalog.Catalog) (*PullResult, error) {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 5 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	res := &PullResult{Started: time.Now().UTC(), Machines: []AzureVM{}}
	ix, err := buildCopyIndex(ctx, c)
	if err != nil {
		return res, fmt.Errorf("read the catalog: %w", err)
	}
	var listed []string // subscriptions listed completely
	var errs []error
	for _, sub := range p.Subscriptions {
		ms, skipped, err := p.list(ctx, sub, ix)
		res.Skipped += skipped
		if err != nil {
			errs = append(errs, fmt.Errorf("subscription %s: %w", sub, err))
			continue
		}
		listed = append(listed, sub)
		res.Machines = append(res.Machines, ms...)
	}
	existing, err := c.Hosts(ctx, catalog.HostFilter{Platform: catalog.PlatformAzure})
	if err != nil {
		return res, errors.Join(append(errs, err)...)
	}
	prev := map[string]catalog.Host{}
	for _, h := range existing {
		prev[h.Name] = h
	}
	seen := map[string]bool{}
	for _, m := range res.Machines {
		if seen[m.Host] {
			res.Errors = append(res.Errors, fmt.Sprintf("%s: another VM or scale set has the same name; %s not recorded", m.Host, m.ResourceID))
			continue
		}
		seen[m.Host] = true
		h := catalog.Host{Name: m.Host, Platform: catalog.PlatformAzure, Image: m.Image, Version: m.Version, ResourceID: m.ResourceID, Region: m.Location}
		if old, ok := prev[m.Host]; ok && parseState(old.DriftSummary).Source == SourceAgent {
			// the agent knows better what runs inside; add where it is
			// (its resource id, and its location unless the agent names a
			// region)
			if strings.EqualFold(old.ResourceID, m.ResourceID) && (old.Region != "" || m.Location == "") {
				continue
			}
			region := old.Region
			if region == "" {
				region = m.Location
			}
			h = old
			h.ResourceID, h.Region = m.ResourceID, region
		} else {
			st := HostState{Source: SourceAzure, AzureKind: m.Kind, Location: m.Location, ImageRef: m.ImageRef, ImageResolved: m.Resolved}
			raw, _ := json.Marshal(st)
			h.DriftSummary = raw
		}
		if err := c.ReportHost(ctx, h); err != nil {
			errs = append(errs, err)
		}
	}
	// forget machines of a fully listed subscription that are gone
	for _, h := range existing {
		if seen[h.Name] || parseState(h.DriftSummary).Source != SourceAzure {
			continue
		}
		for _, sub := range listed {
			if strings.HasPrefix(strings.ToLower(h.ResourceID), strings.ToLower("/subscriptions/"+sub+"/")) {
				if err := c.RemoveHost(ctx, h.Name); err != nil && !errors.Is(err, catalog.ErrNotFound) {
					errs = append(errs, err)
				} else {
					res.Removed = append(res.Removed, h.Name)
				}
				break
			}
		}
	}
	for _, e := range errs {
		res.Errors = append(res.Errors, e.Error())
	}
	res.Finished = time.Now().UTC()
	return res, errors.Join(errs...)
}

func (p *AzurePuller) list(ctx context.Context, sub string, ix *copyIndex) ([]AzureVM, int, error) {
	c, err := azure.NewClients(sub, p.Credential, p.ClientOptions) // the clients publish and gc use
	if err != nil {
		return nil, 0, err
	}
	var out []AzureVM
	skipped := 0
	add := func(kind string, id, name, loc *string, ir *armcompute.ImageReference) {
		if ir == nil || deref(ir.ID) == "" {
			skipped++
			return
		}
		ref, how, ok := ix.resolve(deref(ir.ID), deref(ir.ExactVersion))
		if !ok {
			skipped++
			return
		}
		out = append(out, AzureVM{Host: deref(name), Kind: kind, ResourceID: deref(id), Location: deref(loc),
			ImageRef: deref(ir.ID), Image: ref.Image, Version: ref.Version, Resolved: how})
	}
	pager := c.VMs.NewListAllPager(nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("list virtual machines: %w", err)
		}
		for _, vm := range page.Value {
			if vm == nil {
				continue
			}
			var ir *armcompute.ImageReference
			if vm.Properties != nil && vm.Properties.StorageProfile != nil {
				ir = vm.Properties.StorageProfile.ImageReference
			}
			add("vm", vm.ID, vm.Name, vm.Location, ir)
		}
	}
	spager := c.ScaleSets.NewListAllPager(nil)
	for spager.More() {
		page, err := spager.NextPage(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("list virtual machine scale sets: %w", err)
		}
		for _, ss := range page.Value {
			if ss == nil {
				continue
			}
			var ir *armcompute.ImageReference
			if ss.Properties != nil && ss.Properties.VirtualMachineProfile != nil && ss.Properties.VirtualMachineProfile.StorageProfile != nil {
				ir = ss.Properties.VirtualMachineProfile.StorageProfile.ImageReference
			}
			add("vmss", ss.ID, ss.Name, ss.Location, ir)
		}
	}
	return out, skipped, nil
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
