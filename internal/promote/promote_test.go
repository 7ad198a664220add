package promote

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
	"imgpipe/internal/config"
)

type stager struct {
	got  map[string]bool
	fail error
}

func (s *stager) SetExcludeFromLatest(_ context.Context, id string, exclude bool) error {
	if s.fail != nil {
		return s.fail
	}
	s.got[id] = exclude
	return nil
}

func seed(t *testing.T) (*catalog.Catalog, catalog.Ref) {
	t.Helper()
	ctx := context.Background()
	c, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ref := catalog.Ref{Image: "web", Version: "1.0.0"}
	if _, err := c.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: "1.0.0", Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat("a", 64)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindGalleryVersion, ResourceID: "gv/web/1.0.0", Location: "westeurope", State: catalog.StateSucceeded}); err != nil {
		t.Fatal(err)
	}
	return c, ref
}

func TestPromoteProdNeedsATestAndUnstages(t *testing.T) {
	ctx := context.Background()
	c, ref := seed(t)
	s := &stager{got: map[string]bool{}}
	req := Request{Ref: ref, Channel: Prod, By: "ann", Stager: s}
	if _, err := Promote(ctx, c, req); !errors.Is(err, catalog.ErrRequirement) || !strings.Contains(err.Error(), "passing test of its artifact") ||
		!strings.Contains(err.Error(), "the catalog's requirements of prod") {
		t.Fatalf("untested: %v", err)
	}
	if len(s.got) != 0 {
		t.Fatalf("a refused promotion touched Azure: %v", s.got)
	}
	catalogtest.Tested(t, c, ref)
	// Azure fails: the catalog move stands, the error says to retry
	s.fail = errors.New("503 from ARM")
	res, err := Promote(ctx, c, req)
	if !errors.Is(err, ErrStaging) || !strings.Contains(err.Error(), "promote again") || res.To != "1.0.0" || len(res.Left) != 1 || len(res.Included) != 0 {
		t.Fatalf("staging failure: %+v %v", res, err)
	}
	// again: a no-op in the catalog, and the version is included this time
	s.fail = nil
	res, err = Promote(ctx, c, req)
	if err != nil || !res.NoOp || len(res.Included) != 1 || s.got["gv/web/1.0.0"] {
		t.Fatalf("retry: %+v %v %v", res, err, s.got)
	}
	// no Azure connection: said, not silently skipped
	if res, err := Promote(ctx, c, Request{Ref: ref, Channel: Prod, By: "ann"}); !errors.Is(err, ErrStaging) || !strings.Contains(res.Left[0], "no Azure connection") {
		t.Fatalf("without a stager: %+v %v", res, err)
	}
}

func TestPipelineFileChannelRules(t *testing.T) {
	ctx := context.Background()
	c, ref := seed(t)
	f, err := config.Parse([]byte(`
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
channel "prod" {
  requires = ["gallery_version:Succeeded", "onprem"]
}
channel "canary" {
  requires = ["tested"]
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	s := &stager{got: map[string]bool{}}
	// the file's rules replace the catalog's: no test needed, a library copy is
	if _, err := Promote(ctx, c, Request{Ref: ref, Channel: Prod, By: "ann", File: f, Stager: s}); !errors.Is(err, catalog.ErrRequirement) ||
		!strings.Contains(err.Error(), "a onprem copy") || strings.Contains(err.Error(), "passing test") || !strings.Contains(err.Error(), `channel "prod" at p.hcl:6`) {
		t.Fatalf("prod by the file: %v", err)
	}
	// a channel the catalog leaves open can be closed by the file
	if _, err := Promote(ctx, c, Request{Ref: ref, Channel: "canary", By: "ann", File: f}); !errors.Is(err, catalog.ErrRequirement) {
		t.Fatalf("canary by the file: %v", err)
	}
	if _, err := c.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindOnprem, ResourceID: "lib/web/1.0.0", State: catalog.StatePresent}); err != nil {
		t.Fatal(err)
	}
	res, err := Promote(ctx, c, Request{Ref: ref, Channel: Prod, By: "ann", File: f, Stager: s})
	if err != nil || res.Rules != `channel "prod" at p.hcl:6` || len(res.Included) != 1 {
		t.Fatalf("prod by the file, met: %+v %v", res, err)
	}
	if Rules(nil, "web", "prod") != nil || Rules(f, "web", "test") != nil {
		t.Error("rules without a block")
	}
}

func TestNewRequest(t *testing.T) {
	dir := t.TempDir()
	ref := catalog.Ref{Image: "web", Version: "1.0.0"}
	if _, err := NewRequest(ref, "", "ann", "", ""); err == nil || !strings.Contains(err.Error(), "--to") {
		t.Fatalf("no channel: %v", err)
	}
	if _, err := NewRequest(ref, "prod", "ann", filepath.Join(dir, "none.hcl"), ""); err == nil {
		t.Fatal("a missing pipeline file was accepted")
	}
	if _, err := NewRequest(ref, "prod", "ann", "", filepath.Join(dir, "none.pem")); err == nil || !strings.Contains(err.Error(), "none.pem") {
		t.Fatalf("a missing signing key: %v", err)
	}
	req, err := NewRequest(ref, "prod", "ann", "", "")
	if err != nil || req.Ref != ref || req.Channel != "prod" || req.By != "ann" || req.File != nil || req.Signer != nil {
		t.Fatalf("%+v %v", req, err)
	}
}
