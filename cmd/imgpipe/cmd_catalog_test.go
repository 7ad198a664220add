package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
)

// seedCatalog makes a SQLite catalog with two images, lineage, a host.
func seedCatalog(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "catalog.db")
	c, err := catalog.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = c.AddVersion(ctx, catalog.NewVersion{Image: "base", Version: "1.0.0"})
	must(err)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		_, err := c.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v, Parent: &catalog.Ref{Image: "base", Version: "1.0.0"},
			Provenance: catalog.Provenance{GitCommit: "abc123" + v, HyperVGeneration: "V2", OSType: "Linux", ArtifactSHA256: "sha-" + v}})
		must(err)
	}
	ref := catalog.Ref{Image: "web", Version: "1.0.0"}
	put := func(cp catalog.Copy) catalog.Copy {
		got, err := c.PutCopy(ctx, ref, cp)
		must(err)
		return got
	}
	art := put(catalog.Copy{Kind: catalog.KindArtifact, ResourceID: "out/web.vhdx", Fingerprint: "sha256:sha-1.0.0", State: catalog.StatePresent})
	put(catalog.Copy{Kind: catalog.KindOnprem, ResourceID: `\\lib\web\1.0.0\web.vhdx`, State: catalog.StatePresent, ParentID: art.ID})
	blob := put(catalog.Copy{Kind: catalog.KindBlob, Location: "westeurope", ResourceID: "https://acct.blob.core.windows.net/vhds/web-1.0.0.vhd", Fingerprint: "md5:x size:1048576", State: catalog.StateSucceeded, ParentID: art.ID})
	mi := put(catalog.Copy{Kind: catalog.KindManagedImage, Location: "westeurope", ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/web-1.0.0", State: catalog.StateSucceeded, ParentID: blob.ID})
	gv := put(catalog.Copy{Kind: catalog.KindGalleryVersion, Location: "westeurope", ResourceID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web/versions/1.0.0", State: catalog.StateSucceeded, ParentID: mi.ID})
	for _, r := range []string{"westeurope", "northeurope"} {
		put(catalog.Copy{Kind: catalog.KindRegion, Location: r, ResourceID: gv.ResourceID + "#" + r, State: catalog.StateSucceeded, ParentID: gv.ID})
	}
	must(c.ReportHost(ctx, catalog.Host{Name: "vm-web-1", Platform: catalog.PlatformAzure, Image: "web", Version: "1.0.0"}))
	catalogtest.Tested(t, c, ref) // prod requires a passing test (1.1.0 has none)
	return path
}

func TestCatalogCLI(t *testing.T) {
	db := seedCatalog(t)
	t.Setenv("USER", "tester")
	staging := fakeStaging(t)
	tests := []struct {
		name    string
		args    []string
		wantErr string
		want    []string
	}{
		{"images", []string{"images"}, "", []string{"IMAGE", "web", "2", "1.1.0", "base"}},
		{"versions", []string{"versions", "web"}, "", []string{"1.1.0", "1.0.0", "abc1231.0.0", "base@1.0.0"}},
		{"versions unknown image", []string{"versions", "nope"}, "not in the catalog", nil},
		{"show tree", []string{"show", "web", "1.0.0"}, "", []string{
			"web 1.0.0  active", "commit      abc1231.0.0", "parent      base@1.0.0", "lineage:",
			"artifact  out/web.vhdx  [Present]  sha256:sha-1.0.0",
			"├── onprem  \\\\lib\\web\\1.0.0\\web.vhdx  [Present]",
			"└── blob  westeurope  https://acct.blob.core.windows.net/vhds/web-1.0.0.vhd  [Succeeded]  md5:x size:1048576",
			"    └── managed_image  westeurope",
			"        └── gallery_version  westeurope",
			"            ├── region  northeurope  [Succeeded]",
			"            └── region  westeurope  [Succeeded]",
		}},
		{"show at-form", []string{"show", "web@1.1.0"}, "", []string{"web 1.1.0", "no copies recorded yet"}},
		{"show bad ref", []string{"show", "web"}, "IMAGE@VERSION", nil},
		{"promote prod", []string{"promote", "web", "1.0.0", "--to", "prod", "--by", "ann"}, "", []string{"prod of web: now 1.0.0 (by ann", "in latest: /subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web/versions/1.0.0"}},
		{"promote again is a no-op", []string{"promote", "web@1.0.0", "--to", "prod"}, "", []string{"already points at 1.0.0"}},
		{"promote unpublished", []string{"promote", "web", "1.1.0", "--to", "prod"}, "needs a gallery_version copy in state Succeeded", nil},
		{"promote dev", []string{"promote", "web", "1.1.0", "--to", "dev"}, "", []string{"dev of web: now 1.1.0 (by tester"}},
		{"promote backwards", []string{"promote", "web", "1.0.0", "--to", "dev"}, "only moves forward", nil},
		{"promote needs --to", []string{"promote", "web", "1.0.0"}, "--to", nil},
		{"revoke needs reason", []string{"revoke", "web", "1.0.0"}, "needs a reason", nil},
		{"revoke", []string{"revoke", "web", "1.0.0", "--reason", "CVE-2026-1"}, "", []string{
			"revoked web@1.0.0", "exclude-from-latest-and-tag", "mark-revoked-in-library", "vm-web-1",
			"channel prod of web still points at revoked 1.0.0"}},
		{"versions shows revocation", []string{"versions", "web"}, "", []string{"revoked: CVE-2026-1"}},
		{"revoke base cascade", []string{"revoke", "base@1.0.0", "--reason", "bad base", "--cascade"}, "", []string{
			"revoked base@1.0.0", "revoked web@1.1.0", "already revoked web@1.0.0"}},
		{"runs", []string{"runs"}, "", []string{"revoke", "base", "succeeded", "tester"}},
		{"runs of web", []string{"runs", "web", "--kind", "revoke"}, "", []string{"web", "1.0.0"}},
		{"gc plan", []string{"gc", "--keep", "0", "--older-than", "0"}, "", []string{"retention plan", "Azure was not asked", "kept:", "in use by host vm-web-1"}},
		{"gc --yes without azure", []string{"gc", "--keep", "0", "--older-than", "0", "--yes"}, "no Azure executor", nil},
		{"gc bad age", []string{"gc", "--older-than", "soon"}, "--older-than", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := runCLI(t, append(tc.args, "--catalog", db)...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q\n%s", err, tc.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
	// prod's gallery version was included in latest once, as Azure would be asked
	if len(staging.got) != 1 || staging.got["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web/versions/1.0.0"] {
		t.Errorf("staging changes %v, want the one gallery version included (excludeFromLatest false)", staging.got)
	}
}

func TestCatalogCLIJSON(t *testing.T) {
	db := seedCatalog(t)
	t.Setenv(catalogEnv, db) // the environment names the catalog
	out, err := runCLI(t, "versions", "web", "--output", "json")
	if err != nil {
		t.Fatal(err)
	}
	var vs []catalog.Version
	if err := json.Unmarshal([]byte(out), &vs); err != nil || len(vs) != 2 || vs[0].Version != "1.1.0" || vs[1].Parent == nil {
		t.Fatalf("versions JSON: %v %+v\n%s", err, vs, out)
	}
	out, err = runCLI(t, "show", "web", "1.0.0", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var l catalog.Lineage
	if err := json.Unmarshal([]byte(out), &l); err != nil || len(l.Roots) != 1 || len(l.Roots[0].Children) != 2 {
		t.Fatalf("show JSON: %v %+v", err, l)
	}
	out, err = runCLI(t, "revoke", "web", "1.0.0", "--reason", "x", "--by", "sec", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var rr catalog.RevokeResult
	if err := json.Unmarshal([]byte(out), &rr); err != nil || len(rr.Revoked) != 1 || len(rr.Actions) != 2 || len(rr.Hosts) != 1 {
		t.Fatalf("revoke JSON: %v %+v", err, rr)
	}
	out, err = runCLI(t, "gc", "--keep", "0", "--older-than", "0", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var plan struct {
		Steps          []catalog.GCStep `json:"steps"`
		Kept           []catalog.GCKeep `json:"kept"`
		AzureConsulted bool             `json:"azure_consulted"`
	}
	if err := json.Unmarshal([]byte(out), &plan); err != nil || plan.AzureConsulted || len(plan.Kept) == 0 {
		t.Fatalf("gc JSON: %v %+v\n%s", err, plan, out)
	}
	for _, verb := range [][]string{{"images"}, {"runs"}} {
		out, err := runCLI(t, append(verb, "-o", "json")...)
		if err != nil || !json.Valid([]byte(out)) {
			t.Errorf("%v JSON: %v\n%s", verb, err, out)
		}
	}
	out, err = runCLI(t, "runs", "--id", "1", "-o", "json")
	var run catalog.Run
	if err != nil || json.Unmarshal([]byte(out), &run) != nil || run.Kind != catalog.RunRevoke || run.By != "sec" {
		t.Errorf("runs --id JSON: %v %+v", err, run)
	}
}

func TestDefaultCatalogLocation(t *testing.T) {
	state := t.TempDir()
	t.Setenv(catalogEnv, "")
	t.Setenv("XDG_STATE_HOME", state)
	if _, err := runCLI(t, "images"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(state, "imgpipe", "catalog.db")); err != nil {
		t.Errorf("default catalog not created under XDG_STATE_HOME: %v", err)
	}
	// the order of the choices: internal/catalog TestLocate
}

type fakeGalleryRevoker struct{ got []catalog.RevokeAction }

func (f *fakeGalleryRevoker) RevokeCopy(ctx context.Context, a catalog.RevokeAction) error {
	f.got = append(f.got, a)
	return nil
}

func TestRevokeAppliesRegisteredRevokers(t *testing.T) {
	db := seedCatalog(t)
	fake := &fakeGalleryRevoker{}
	real := revokerFor
	revokerFor = func(kind catalog.CopyKind) (func(ctx context.Context) (catalog.Revoker, error), bool) {
		if kind == catalog.KindGalleryVersion {
			return func(ctx context.Context) (catalog.Revoker, error) { return fake, nil }, true
		}
		return real(kind)
	}
	defer func() { revokerFor = real }() // other tests use the real one
	out, err := runCLI(t, "revoke", "web", "1.0.0", "--reason", "CVE", "--catalog", db)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(fake.got) != 1 || fake.got[0].Action != catalog.ActionExcludeFromLatest || fake.got[0].Reason != "CVE" {
		t.Fatalf("revoker calls: %+v", fake.got)
	}
	if !strings.Contains(out, "done: exclude-from-latest-and-tag gallery_version") || !strings.Contains(out, "mark-revoked-in-library") ||
		strings.Contains(out, "exclude-from-latest-and-tag  gallery_version") {
		t.Errorf("output:\n%s", out)
	}
	c, err := catalog.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cps, _ := c.Copies(context.Background(), catalog.Ref{Image: "web", Version: "1.0.0"})
	for _, cp := range cps {
		if cp.Kind == catalog.KindGalleryVersion && cp.State != catalog.StateRevoked {
			t.Errorf("gallery version state %s after its revoker ran", cp.State)
		}
	}
}
