package pipeline

import (
	"context"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// TestGalleryReplicateRemoveDestroy acts on a published version outside a
// publish, through the engine and without the CLI: the catalog's region
// copies follow replicate and remove-region (from what Azure returned), and
// destroy of the gallery records a run and marks the version and its
// regions Deleted, leaving nothing in Azure.
func TestGalleryReplicateRemoveDestroy(t *testing.T) {
	e := startEnv(t)
	s := e.setup(t, "gallery")
	ctx := context.Background()
	if _, _, err := s.engine.Publish(ctx, s.request(t), nil); err != nil {
		t.Fatal(err)
	}
	az, _ := s.file.AzureTarget("")
	id := azure.ResourceID{Subscription: az.Subscription, ResourceGroup: az.ResourceGroup, Gallery: az.Gallery, Definition: az.Definition, Version: "1.0.0"}
	g := &Gallery{Publisher: e.pub, Catalog: s.cat, By: "test", Image: "app"}

	res, err := g.Replicate(ctx, id, []config.TargetRegion{{Name: "japaneast", Replicas: 1, StorageAccountType: "Standard_LRS"}}, time.Minute)
	if err != nil || strings.Join(res.Added, ",") != "japaneast" {
		t.Fatalf("replicate: %+v %v", res, err)
	}
	want := "gallery_version Succeeded > [region japaneast Succeeded, region northeurope Succeeded, region westeurope Succeeded]"
	if got := s.lineage(t); !strings.Contains(got, want) {
		t.Fatalf("lineage after replicate:\n got %s\nwant %s", got, want)
	}

	removed, err := g.RemoveRegions(ctx, id, []string{"japaneast"})
	if err != nil || strings.Join(removed, ",") != "japaneast" {
		t.Fatalf("remove-region: %v %v", removed, err)
	}
	want = "gallery_version Succeeded > [region japaneast Deleted, region northeurope Succeeded, region westeurope Succeeded]"
	if got := s.lineage(t); !strings.Contains(got, want) {
		t.Errorf("lineage after remove-region:\n got %s\nwant %s", got, want)
	}

	gid := id
	gid.Definition, gid.Version = "", ""
	dp, err := e.pub.PlanDestroy(ctx, gid, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Destroy(ctx, gid, dp); err != nil {
		t.Fatal(err)
	}
	if got, want := s.lineage(t), "gallery_version Deleted > [region"; !strings.Contains(got, want) || strings.Contains(got, "region northeurope Succeeded") {
		t.Errorf("lineage after destroy: %s", got)
	}
	runs, err := s.cat.Runs(ctx, catalog.RunFilter{Kind: "destroy"})
	if err != nil || len(runs) != 1 || runs[0].Status != catalog.RunSucceeded {
		t.Fatalf("destroy runs: %+v %v", runs, err)
	}
	if r, err := s.cat.Run(ctx, runs[0].ID); err != nil || len(r.Steps) == 0 {
		t.Fatalf("destroy run steps: %+v %v", r, err)
	}
	for _, rid := range e.emu.Server.ResourceIDs("") {
		if l := strings.ToLower(rid); strings.Contains(l, "/galleries/gal_gallery") {
			t.Errorf("left after destroy: %s", rid)
		}
	}
}
