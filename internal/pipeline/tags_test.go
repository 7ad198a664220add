package pipeline

import (
	"context"
	"testing"

	"imgpipe/internal/azure"
)

// TestVersionCarriesExtraTags: the tags the Azure destination is given for
// a version (where its SBOM and signed provenance are) are on the gallery
// version Azure holds, beside imgpipe's own, which they cannot replace.
func TestVersionCarriesExtraTags(t *testing.T) {
	e := startEnv(t)
	s := e.setup(t, "tags")
	ctx := context.Background()
	var askedFor string
	s.engine.Destinations[0].(*Azure).Tags = func(ctx context.Context, version string) (map[string]string, error) {
		askedFor = version
		return map[string]string{"imgpipe.provenance.sha256": "abc123", azure.TagSourceDigest: "forged"}, nil
	}
	plan, _, err := s.engine.Publish(ctx, s.request(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if askedFor != "1.0.0" {
		t.Errorf("tags asked for version %q, want 1.0.0", askedFor)
	}
	v, err := e.pub.Clients.Versions.Get(ctx, "rg-tags", "gal_tags", "app", "1.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	tag := func(k string) string {
		if p := v.Tags[k]; p != nil {
			return *p
		}
		return ""
	}
	if tag("imgpipe.provenance.sha256") != "abc123" {
		t.Errorf("gallery version tags %v lack the provenance tag", v.Tags)
	}
	if tag(azure.TagSourceDigest) != plan.Source.Digest {
		t.Errorf("an extra tag replaced imgpipe's source digest: %q", tag(azure.TagSourceDigest))
	}
}
