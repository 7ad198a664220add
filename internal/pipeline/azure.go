package pipeline

// The Azure Compute Gallery destination: internal/azure plans and applies;
// this file translates its steps and the copies its apply returned into the
// engine's terms.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// ErrStillReplicating is wrapped by the error of a publish whose
// replication timeout ended the waiting: the version keeps replicating in
// Azure, and running publish again resumes watching.
var ErrStillReplicating = azure.ErrStillReplicating

// Azure publishes to one azure block of the pipeline file.
type Azure struct {
	Target    config.Azure
	Publisher *azure.Publisher
	// Tags, if set, gives extra tags for the version about to be created
	// (where its SBOM and signed provenance are).
	Tags func(ctx context.Context, version string) (map[string]string, error)
}

// AzurePlan is the Azure destination's part of a plan.
type AzurePlan struct{ *azure.Plan }

// Version implements DestinationPlan.
func (p AzurePlan) Version() string { return p.Plan.Version }

// Name implements Destination.
func (a *Azure) Name() string { return "azure " + a.Target.Name }

// DecidesVersion: the azure block names the version (or next-patch).
func (a *Azure) DecidesVersion() bool { return true }

// Plan implements Destination.
func (a *Azure) Plan(ctx context.Context, r Request) (DestinationPlan, error) {
	p, err := a.Publisher.Plan(ctx, &azure.Desired{Image: *r.Image, Azure: a.Target, Source: r.Source})
	if err != nil {
		return nil, err
	}
	if r.Version != "" && p.Version != r.Version {
		return nil, fmt.Errorf("azure %s publishes version %s, not %s: set version in the azure block", a.Target.Name, p.Version, r.Version)
	}
	return AzurePlan{p}, nil
}

// stepRecorder adapts the engine's recorder to internal/azure's.
type stepRecorder struct {
	rec  StepRecorder
	dest string
}

func (s stepRecorder) RecordStep(ctx context.Context, r azure.StepRecord) error {
	return s.rec.RecordStep(ctx, Step{Destination: s.dest, Action: string(r.Action), Kind: string(azureKinds[r.Kind]),
		Name: r.Name, ResourceID: r.ResourceID, Fingerprint: r.Fingerprint, Failed: r.Status == "failed", Error: r.Error,
		Started: r.Started, Ended: r.Ended, Deleted: r.Action == azure.ActDelete})
}

// azureKinds maps Azure resource kinds to catalog copy kinds (the kinds
// without a copy keep their own name in run steps).
var azureKinds = map[azure.Kind]catalog.CopyKind{
	azure.KindVersion:        catalog.KindGalleryVersion,
	azure.KindManagedImage:   catalog.KindManagedImage,
	azure.KindBlob:           catalog.KindBlob,
	azure.KindDisk:           catalog.KindManagedDisk,
	azure.KindRegion:         catalog.KindRegion,
	azure.KindResourceGroup:  catalog.CopyKind(azure.KindResourceGroup),
	azure.KindGallery:        catalog.CopyKind(azure.KindGallery),
	azure.KindDefinition:     catalog.CopyKind(azure.KindDefinition),
	azure.KindReplication:    catalog.CopyKind(azure.KindReplication),
	azure.KindRoleAssignment: catalog.CopyKind(azure.KindRoleAssignment),
}

// Apply implements Destination: the copies come from what apply returned.
func (a *Azure) Apply(ctx context.Context, dp DestinationPlan, rec StepRecorder) (*Applied, error) {
	p, ok := dp.(AzurePlan)
	if !ok {
		return nil, fmt.Errorf("internal error: %T is not an Azure plan", dp)
	}
	pub := *a.Publisher // the recorder is this run's
	if rec != nil && p.HasChanges() {
		pub.Recorder = stepRecorder{rec: rec, dest: a.Name()}
	}
	if a.Tags != nil && p.HasChanges() {
		tags, err := a.Tags(ctx, p.Version())
		if err != nil {
			return nil, err
		}
		pub.ExtraTags = tags
	}
	res, err := pub.Apply(ctx, p.Plan)
	if res == nil {
		return nil, err
	}
	if err != nil && !errors.Is(err, azure.ErrStillReplicating) {
		slog.Debug("azure publish failed", "err", err)
	}
	return &Applied{Copies: copiesOf(res.Copies), Result: res}, err
}

// copiesOf translates Azure's copies into catalog terms.
func copiesOf(made []azure.Made) []Copy {
	var out []Copy
	for _, m := range made {
		c := Copy{Kind: azureKinds[m.Kind], ID: m.ID, Location: m.Location, Fingerprint: m.Fingerprint, State: m.State, Parent: m.Parent, Detail: m.Detail}
		switch m.Kind {
		case azure.KindRegion:
			c.State = RegionState(m.State)
		case azure.KindVersion:
			c.Location = config.NormalizeLocation(m.Location)
		}
		out = append(out, c)
	}
	return out
}

// RegionState maps a replication state to a catalog copy state.
func RegionState(s string) string {
	switch s {
	case "Completed":
		return catalog.StateSucceeded
	case "Replicating":
		return catalog.StateCreating
	case "Failed":
		return catalog.StateFailed
	case "":
		return "Unknown"
	}
	return s
}

// AzureSteps records the steps of an Azure operation run outside a publish
// (destroy) as steps of the catalog run runID; the copies a delete removed
// are marked deleted. cat nil records nothing (nil recorder).
func AzureSteps(cat *catalog.Catalog, runID int64, dest string) azure.RunRecorder {
	if cat == nil {
		return nil
	}
	return stepRecorder{rec: &recorder{e: &Engine{Catalog: cat}, runID: runID, dest: dest}, dest: dest}
}

// RecordRegions records, from what replicate returned, one copy per target
// region of the gallery version versionID of image (nothing is read back).
// A version the catalog does not know is left alone.
func RecordRegions(ctx context.Context, cat *catalog.Catalog, image, versionID string, regions []azure.RegionProgress) error {
	id, err := azure.ParseResourceID(versionID)
	if err != nil {
		return err
	}
	ref := catalog.Ref{Image: image, Version: id.Version}
	cps, err := cat.Copies(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if cp.Kind != catalog.KindGalleryVersion || !azure.SameID(cp.ResourceID, versionID) {
			continue
		}
		for _, r := range regions {
			d, _ := json.Marshal(map[string]any{"replication_state": r.State, "progress": r.Progress, "details": r.Details})
			if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindRegion, Location: r.Region, ResourceID: cp.ResourceID + "#" + r.Region,
				State: RegionState(r.State), ParentID: cp.ID, Detail: d}); err != nil {
				return err
			}
		}
	}
	return nil
}
