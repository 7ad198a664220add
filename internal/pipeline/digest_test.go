package pipeline

import (
	"context"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/zeebo/blake3"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/source"
)

// TestOneSourceDigest: every copy made from the source carries the same
// sha256:HEX fingerprint (the artifact, the gallery version, its Azure tag),
// and a version an earlier release tagged with the source's BLAKE3 digest is
// still recognised as made from this disk: the plan keeps it, and the
// lineage shows the one digest.
func TestOneSourceDigest(t *testing.T) {
	e := startEnv(t)
	s := e.setup(t, "digest")
	ctx := context.Background()
	plan, _, err := s.engine.Publish(ctx, s.request(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := plan.Source.Digest
	if !strings.HasPrefix(want, "sha256:") || want != "sha256:"+plan.Source.SHA256 {
		t.Fatalf("source digest %q (sha256 %s)", want, plan.Source.SHA256)
	}
	fingerprints := func() map[catalog.CopyKind]string {
		cps, err := s.cat.Copies(ctx, catalog.Ref{Image: "app", Version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		m := map[catalog.CopyKind]string{}
		for _, c := range cps {
			m[c.Kind] = c.Fingerprint
		}
		return m
	}
	if fp := fingerprints(); fp[catalog.KindArtifact] != want || fp[catalog.KindGalleryVersion] != want {
		t.Fatalf("fingerprints %v, want artifact and gallery_version %s", fp, want)
	}

	// over copies tagged with sha256 only, a publish never computes BLAKE3
	if plan.Source.LegacyHashed() {
		t.Fatal("the first publish computed the source's BLAKE3 digest")
	}
	second := s.request(t)
	if _, _, err := s.engine.Publish(ctx, second, nil); err != nil {
		t.Fatal(err)
	}
	if second.Source.LegacyHashed() {
		t.Fatal("a publish over copies tagged sha256 computed the source's BLAKE3 digest")
	}

	// an earlier release tagged the version (and its image) with BLAKE3
	data, err := os.ReadFile(s.disk)
	if err != nil {
		t.Fatal(err)
	}
	sum := blake3.Sum256(data)
	legacy := source.LegacyPrefix + hex.EncodeToString(sum[:])
	rg, gal := "rg-digest", "gal_digest"
	vp, err := e.pub.Clients.Versions.BeginUpdate(ctx, rg, gal, "app", "1.0.0", armcompute.GalleryImageVersionUpdate{
		Tags: map[string]*string{azure.TagSourceDigest: to.Ptr(legacy)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vp.PollUntilDone(ctx, nil); err != nil {
		t.Fatal(err)
	}
	v, err := e.pub.Clients.Versions.Get(ctx, rg, gal, "app", "1.0.0", nil)
	if err != nil || v.Tags[azure.TagSourceDigest] == nil || *v.Tags[azure.TagSourceDigest] != legacy {
		t.Fatalf("the emulator did not keep the legacy tag: %v", err)
	}
	third := s.request(t)
	again, err := s.engine.Plan(ctx, third)
	if err != nil {
		t.Fatalf("a version tagged by an earlier release was refused: %v", err)
	}
	if !third.Source.LegacyHashed() {
		t.Fatal("the legacy tag was judged without the source's BLAKE3 digest")
	}
	if again.HasChanges() {
		t.Fatalf("plan over a legacy-tagged version has changes:\n%s", again.Destinations[0].Plan.Text())
	}
}
