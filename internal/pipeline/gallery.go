package pipeline

// Acting on what publishes made, outside a publish: destroy, replicate and
// remove-region. internal/azure acts; this file records the run and what
// changed in the catalog, from what Azure returned.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"time"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// Gallery acts on the galleries of one subscription.
type Gallery struct {
	Publisher *azure.Publisher
	// Catalog records the run and the copies' states; nil records nothing.
	Catalog *catalog.Catalog
	By      string
	// Image is the catalog image the versions are of ("": the definition's
	// name).
	Image string
}

// Destroy deletes what dp lists (azure.Publisher.Destroy), recording a run
// of kind destroy with its steps; the copies deleted are marked deleted, a
// gallery version with its regions. A catalog that cannot record is logged
// and the deletion goes on.
func (g *Gallery) Destroy(ctx context.Context, id azure.ResourceID, dp *azure.DestroyPlan) error {
	pub := *g.Publisher // the recorder is this run's
	finish := func(error) {}
	if g.Catalog != nil {
		run, err := g.Catalog.StartRun(ctx, catalog.Run{Kind: "destroy", Image: id.Definition, Version: id.Version, By: g.By})
		if err != nil {
			slog.Warn("catalog: could not start the run record", "err", err)
		} else {
			pub.Recorder = AzureSteps(g.Catalog, run.ID, "destroy")
			finish = func(runErr error) {
				if err := g.Catalog.FinishRun(context.WithoutCancel(ctx), run.ID, runErr); err != nil {
					slog.Warn("catalog: could not finish the run record", "err", err)
				}
			}
		}
	}
	err := pub.Destroy(ctx, dp)
	finish(err)
	return err
}

// Replicate adds target regions to the version id
// (azure.Publisher.Replicate); the catalog's region copies of the version
// follow from what it returned, also when the timeout ended the wait.
func (g *Gallery) Replicate(ctx context.Context, id azure.ResourceID, add []config.TargetRegion, timeout time.Duration) (*azure.ReplicateResult, error) {
	res, err := g.Publisher.Replicate(ctx, id, add, timeout)
	if res != nil && (err == nil || errors.Is(err, azure.ErrStillReplicating)) {
		g.recordRegions(ctx, id, res.Regions)
	}
	return res, err
}

// RemoveRegions drops regions from the version id (the one way imgpipe
// drops a replica) and records its region copies as Azure now holds them.
func (g *Gallery) RemoveRegions(ctx context.Context, id azure.ResourceID, regions []string) ([]string, error) {
	removed, err := g.Publisher.RemoveRegions(ctx, id, regions)
	if err != nil || g.Catalog == nil {
		return removed, err
	}
	// removing returns only the names: the states are Azure's now
	st, err := g.Publisher.DescribeVersion(ctx, id)
	if err != nil {
		slog.Warn("catalog: region copies not updated", "err", err)
		return removed, nil
	}
	g.recordRegions(ctx, id, st.Regions)
	if err := g.markRegionsDeleted(ctx, id, removed); err != nil {
		slog.Warn("catalog: removed region copies not marked deleted", "err", err)
	}
	return removed, nil
}

// markRegionsDeleted marks the region copies of the version id in the
// removed regions deleted.
func (g *Gallery) markRegionsDeleted(ctx context.Context, id azure.ResourceID, removed []string) error {
	cps, err := g.Catalog.Copies(ctx, catalog.Ref{Image: g.image(id), Version: id.Version})
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	versions := map[int64]bool{}
	for _, cp := range cps {
		if cp.Kind == catalog.KindGalleryVersion && azure.SameID(cp.ResourceID, id.String()) {
			versions[cp.ID] = true
		}
	}
	for _, cp := range cps {
		if cp.Kind != catalog.KindRegion || !versions[cp.ParentID] || !slices.Contains(removed, cp.Location) {
			continue
		}
		if err := g.Catalog.SetCopyState(ctx, cp.ID, catalog.StateDeleted); err != nil {
			return err
		}
	}
	return nil
}

func (g *Gallery) image(id azure.ResourceID) string {
	if g.Image != "" {
		return g.Image
	}
	return id.Definition
}

// recordRegions records the version's region copies; a catalog that
// cannot is logged (Azure has changed already).
func (g *Gallery) recordRegions(ctx context.Context, id azure.ResourceID, regions []azure.RegionProgress) {
	if g.Catalog == nil {
		return
	}
	if err := RecordRegions(ctx, g.Catalog, g.image(id), id.String(), regions); err != nil {
		slog.Warn("catalog: region copies not updated", "err", err)
	}
}
