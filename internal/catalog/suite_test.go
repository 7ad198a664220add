package catalog

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"imgpipe/internal/testenv"
)

// backend makes fresh, empty catalog locations for the suite.
type backend struct {
	name        string
	newLocation func(t *testing.T) string
}

func sqliteBackend() backend {
	return backend{name: "sqlite", newLocation: func(t *testing.T) string {
		return filepath.Join(t.TempDir(), "catalog.db")
	}}
}

func TestCatalogSQLite(t *testing.T) { runCatalogSuite(t, sqliteBackend()) }

func TestCatalogPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	runCatalogSuite(t, backend{name: "postgres", newLocation: func(t *testing.T) string { return pg.NewDatabase(t) }})
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openAt(t *testing.T, loc string, opts ...Option) *Catalog {
	t.Helper()
	c, err := Open(context.Background(), loc, opts...)
	if err != nil {
		t.Fatalf("open %s: %v", loc, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// runCatalogSuite is the one suite every backend must pass.
func runCatalogSuite(t *testing.T, b backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b backend)
	}{
		{"VersionsAndLineage", testVersionsAndLineage},
		{"AccessTokens", testAccessTokens},
		{"Promote", testPromote},
		{"Revoke", testRevoke},
		{"Outdated", testOutdated},
		{"Runs", testRuns},
		{"LockSerialisesPublishes", testLockSerialisesPublishes},
		{"LockTimeout", testLockTimeout},
		{"LockHolderDies", testLockHolderDies},
		{"LockManyWaiters", testLockManyWaiters},
		{"LockSaysWhoHolds", testLockSaysWhoHolds},
		{"LockKilledHolder", testLockKilledHolder},
		{"RunsShowsKilledRun", testRunsShowsKilledRun},
		{"Migration", testMigration},
		{"Fleet", testFleet},
		{"GCPlanAndRun", testGC},
		{"HostCredentials", testHostCredentials},
		{"FleetQueries", testFleetQueries},
		{"FleetPagingWalk", testFleetPagingWalk},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, b) })
	}
}

func mustVersion(t *testing.T, c *Catalog, nv NewVersion) Version {
	t.Helper()
	v, err := c.AddVersion(context.Background(), nv)
	if err != nil {
		t.Fatalf("AddVersion %s@%s: %v", nv.Image, nv.Version, err)
	}
	return v
}

func mustCopy(t *testing.T, c *Catalog, ref Ref, cp Copy) Copy {
	t.Helper()
	got, err := c.PutCopy(context.Background(), ref, cp)
	if err != nil {
		t.Fatalf("PutCopy %s %s: %v", ref, cp.Kind, err)
	}
	return got
}

// markTested records a passing test run of ref's current artifact digest,
// as imgpipe test does when every check passes: what prod requires by
// default (migration 16) besides a Succeeded gallery version.
func markTested(t *testing.T, c *Catalog, ref Ref) {
	t.Helper()
	now := time.Now().UTC()
	if _, err := c.AddTestRun(context.Background(), TestRun{Ref: ref, Test: "fixture", Runner: "fixture", Passed: true,
		StartedAt: now, FinishedAt: now, Checks: []TestCheck{{Name: "boot", Passed: true}}}); err != nil {
		t.Fatalf("record a passing test of %s: %v", ref, err)
	}
}

// publishAll records the full lineage of a version: artifact, on-prem copy,
// blob, managed image, gallery version (Succeeded) and its regions.
func publishAll(t *testing.T, c *Catalog, ref Ref, regions ...string) map[CopyKind]Copy {
	t.Helper()
	out := map[CopyKind]Copy{}
	sub := "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/Microsoft.Compute"
	art := mustCopy(t, c, ref, Copy{Kind: KindArtifact, ResourceID: "build/" + ref.Image + "-" + ref.Version + ".vhdx", Fingerprint: "sha256:aa", State: StatePresent})
	out[KindArtifact] = art
	out[KindOnprem] = mustCopy(t, c, ref, Copy{Kind: KindOnprem, Location: `\\lib\images`, ResourceID: `\\lib\images\` + ref.Image + `\` + ref.Version, Fingerprint: "sha256:aa", State: StatePresent, ParentID: art.ID})
	blob := mustCopy(t, c, ref, Copy{Kind: KindBlob, Location: "westeurope", ResourceID: "https://acct.blob.core.windows.net/vhds/" + ref.Image + "-" + ref.Version + ".vhd", Fingerprint: "md5:bb size:1048576", State: StateSucceeded, ParentID: art.ID})
	out[KindBlob] = blob
	mi := mustCopy(t, c, ref, Copy{Kind: KindManagedImage, Location: "westeurope", ResourceID: sub + "/images/" + ref.Image + "-" + ref.Version, Fingerprint: "created:2026-03-01T12:00:00Z", State: StateSucceeded, ParentID: blob.ID})
	out[KindManagedImage] = mi
	gv := mustCopy(t, c, ref, Copy{Kind: KindGalleryVersion, Location: "westeurope", ResourceID: sub + "/galleries/g/images/" + ref.Image + "/versions/" + ref.Version, State: StateSucceeded, ParentID: mi.ID})
	out[KindGalleryVersion] = gv
	for _, r := range regions {
		mustCopy(t, c, ref, Copy{Kind: KindRegion, Location: r, ResourceID: gv.ResourceID + "#" + r, State: StateSucceeded, ParentID: gv.ID})
	}
	return out
}

func testVersionsAndLineage(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	built := time.Date(2026, 2, 1, 8, 0, 0, 0, time.UTC)
	nv := NewVersion{Image: "web", Version: "1.9.0", Provenance: Provenance{GitCommit: "abc123", TemplateHash: "sha256:t", PackerVersion: "1.6.6",
		BuildTime: built, ArtifactSHA256: "aa", HyperVGeneration: "V2", OSType: "Linux"}, Tags: map[string]string{"team": "web"}}
	v := mustVersion(t, c, nv)
	if v.Status != StatusActive || v.GitCommit != "abc123" || !v.BuildTime.Equal(built) || v.HyperVGeneration != "V2" || v.Tags["team"] != "web" {
		t.Fatalf("recorded version does not round-trip: %+v", v)
	}
	// Re-recording the same bits is a no-op; different bits are a conflict.
	again := mustVersion(t, c, nv)
	if again.ID != v.ID {
		t.Errorf("re-recording made a new row: %d vs %d", again.ID, v.ID)
	}
	nv2 := nv
	nv2.ArtifactSHA256 = "other"
	if _, err := c.AddVersion(ctx, nv2); !errors.Is(err, ErrConflict) {
		t.Errorf("different artifact under the same version: got %v, want ErrConflict", err)
	}
	for _, bad := range []NewVersion{
		{Image: "web", Version: "1.0"},
		{Image: "web", Version: "01.0.0"},
		{Image: "bad name", Version: "1.0.0"},
		{Image: "web", Version: "1.0.1", Parent: &Ref{"nope", "1.0.0"}},
	} {
		if _, err := c.AddVersion(ctx, bad); err == nil {
			t.Errorf("AddVersion(%+v) accepted", bad)
		}
	}
	mustVersion(t, c, NewVersion{Image: "web", Version: "1.10.0", Provenance: Provenance{ArtifactSHA256: "bb"}})
	mustVersion(t, c, NewVersion{Image: "web", Version: "1.10.0-rc.1", Provenance: Provenance{ArtifactSHA256: "cc"}})
	vs, err := c.Versions(ctx, "web")
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	for _, x := range vs {
		order = append(order, x.Version)
	}
	if fmt.Sprint(order) != "[1.10.0 1.10.0-rc.1 1.9.0]" {
		t.Errorf("versions not in SemVer order, newest first: %v", order)
	}

	ref := Ref{"web", "1.9.0"}
	cps := publishAll(t, c, ref, "westeurope", "northeurope")
	// Updating a copy (same kind and resource id) changes it in place.
	upd := cps[KindGalleryVersion]
	upd.State = StateSucceeded
	upd.Fingerprint = "source:" + cps[KindManagedImage].ResourceID
	if got := mustCopy(t, c, ref, upd); got.ID != cps[KindGalleryVersion].ID || got.Fingerprint != upd.Fingerprint {
		t.Errorf("updating a copy made a new one or lost the change: %+v", got)
	}
	if _, err := c.PutCopy(ctx, ref, Copy{Kind: "floppy", ResourceID: "x"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown copy kind accepted: %v", err)
	}
	if _, err := c.PutCopy(ctx, ref, Copy{Kind: KindBlob, ResourceID: "https://a/b?sv=1&sig=secret"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("a SAS URL was accepted as resource id: %v", err)
	}
	// A copy cannot become its own ancestor.
	loop := cps[KindArtifact]
	loop.ParentID = cps[KindGalleryVersion].ID
	if _, err := c.PutCopy(ctx, ref, loop); !errors.Is(err, ErrInvalid) {
		t.Errorf("lineage cycle accepted: %v", err)
	}
	if _, err := c.PutCopy(ctx, ref, Copy{Kind: KindBlob, ResourceID: "x", ParentID: 999999}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown parent copy accepted: %v", err)
	}

	l, err := c.Lineage(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	// artifact -> (onprem, blob -> managed image -> gallery version -> 2 regions)
	if len(l.Roots) != 1 || l.Roots[0].Kind != KindArtifact {
		t.Fatalf("lineage roots: %+v", l.Roots)
	}
	art := l.Roots[0]
	if len(art.Children) != 2 || art.Children[0].Kind != KindOnprem || art.Children[1].Kind != KindBlob {
		t.Fatalf("artifact children: %+v", art.Children)
	}
	gv := art.Children[1].Children[0].Children[0]
	if gv.Kind != KindGalleryVersion || len(gv.Children) != 2 || gv.Children[0].Location != "northeurope" {
		t.Fatalf("gallery version node: %+v", gv)
	}
	found, err := c.FindCopies(ctx, KindGalleryVersion, gv.ResourceID)
	if err != nil || len(found) != 1 || found[0].Ref != ref {
		t.Errorf("FindCopies: %+v, %v", found, err)
	}

	imgs, err := c.Images(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(imgs) != 1 || imgs[0].Name != "web" || imgs[0].Versions != 3 || imgs[0].Latest != "1.10.0" {
		t.Errorf("Images: %+v", imgs)
	}
	if _, err := c.Version(ctx, Ref{"web", "9.9.9"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}
}

func testPromote(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	for i, ver := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		mustVersion(t, c, NewVersion{Image: "app", Version: ver, Provenance: Provenance{ArtifactSHA256: fmt.Sprint(i)}})
	}
	v100, v110, v120 := Ref{"app", "1.0.0"}, Ref{"app", "1.1.0"}, Ref{"app", "1.2.0"}

	// Defaults: test needs an on-prem copy; prod a Succeeded gallery version.
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v100, Channel: "test", By: "ann"}); !errors.Is(err, ErrRequirement) {
		t.Fatalf("promote without on-prem copy: %v, want ErrRequirement", err)
	}
	art := mustCopy(t, c, v100, Copy{Kind: KindArtifact, ResourceID: "a1", State: StatePresent})
	mustCopy(t, c, v100, Copy{Kind: KindOnprem, ResourceID: "lib/app/1.0.0", State: StatePresent, ParentID: art.ID})
	p, err := c.Promote(ctx, PromoteRequest{Ref: v100, Channel: "test", By: "ann"})
	if err != nil {
		t.Fatalf("promote to test: %v", err)
	}
	if p.By != "ann" || p.From != "" || p.To != "1.0.0" || p.At.IsZero() {
		t.Errorf("promotion record: %+v", p)
	}
	gv := mustCopy(t, c, v100, Copy{Kind: KindGalleryVersion, ResourceID: "gv/1.0.0", State: StateCreating})
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v100, Channel: "prod", By: "ann"}); !errors.Is(err, ErrRequirement) {
		t.Errorf("prod with a gallery version still Creating: %v, want ErrRequirement", err)
	}
	if err := c.SetCopyState(ctx, gv.ID, StateSucceeded); err != nil {
		t.Fatal(err)
	}
	// A Succeeded gallery version is not enough: prod needs a passing test.
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v100, Channel: "prod", By: "bob"}); !errors.Is(err, ErrRequirement) || !strings.Contains(err.Error(), "passing test") {
		t.Errorf("prod untested: %v, want ErrRequirement naming the test", err)
	}
	markTested(t, c, v100)
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v100, Channel: "prod", By: "bob"}); err != nil {
		t.Fatalf("promote to prod: %v", err)
	}
	// Same version again: a no-op, not recorded.
	if p, err := c.Promote(ctx, PromoteRequest{Ref: v100, Channel: "prod", By: "bob"}); err != nil || !p.NoOp {
		t.Errorf("re-promote: %+v, %v", p, err)
	}
	// A channel without requirements ("dev") takes any version.
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v120, Channel: "dev", By: "cid"}); err != nil {
		t.Fatalf("promote to dev: %v", err)
	}
	// Forward only.
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v110, Channel: "dev", By: "cid"}); !errors.Is(err, ErrNotForward) {
		t.Errorf("backwards promotion: %v, want ErrNotForward", err)
	}
	// Per-image requirements override the defaults.
	if err := c.SetRequirements(ctx, "app", "test", []Requirement{{Kind: KindBlob, State: StateSucceeded}}); err != nil {
		t.Fatal(err)
	}
	reqs, err := c.Requirements(ctx, "app", "test")
	if err != nil || len(reqs) != 1 || reqs[0].Kind != KindBlob {
		t.Fatalf("requirements: %+v %v", reqs, err)
	}
	mustCopy(t, c, v110, Copy{Kind: KindBlob, ResourceID: "blob/1.1.0", State: StateFailed})
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v110, Channel: "test", By: "ann"}); !errors.Is(err, ErrRequirement) {
		t.Errorf("failed blob accepted: %v", err)
	}
	mustCopy(t, c, v110, Copy{Kind: KindBlob, ResourceID: "blob/1.1.0", State: StateSucceeded})
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v110, Channel: "test", By: "ann"}); err != nil {
		t.Fatalf("promote with per-image requirement met: %v", err)
	}
	// Revoked versions cannot be promoted.
	if _, err := c.Revoke(ctx, RevokeRequest{Ref: v120, Reason: "bad", By: "sec"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v120, Channel: "test", By: "ann"}); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked version promoted: %v", err)
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: v110, Channel: "test", By: ""}); !errors.Is(err, ErrInvalid) {
		t.Errorf("anonymous promotion: %v", err)
	}
	hist, err := c.Promotions(ctx, "app", "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hist {
		got = append(got, fmt.Sprintf("%s:%s->%s by %s", h.Channel, h.From, h.To, h.By))
	}
	want := "[test:->1.0.0 by ann prod:->1.0.0 by bob dev:->1.2.0 by cid test:1.0.0->1.1.0 by ann]"
	if fmt.Sprint(got) != want {
		t.Errorf("promotion history:\n got %v\nwant %v", got, want)
	}
	chs, err := c.Channels(ctx, "app")
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(chs[0].Name, chs[0].Version, chs[1].Name, chs[1].Version, chs[2].Name, chs[2].Version) != "dev1.2.0prod1.0.0test1.1.0" {
		t.Errorf("channels: %+v", chs)
	}
}

func testRevoke(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	base := Ref{"base", "1.0.0"}
	mustVersion(t, c, NewVersion{Image: "base", Version: "1.0.0"})
	mustVersion(t, c, NewVersion{Image: "web", Version: "2.0.0", Parent: &base})
	mustVersion(t, c, NewVersion{Image: "web-canary", Version: "2.0.0", Parent: &Ref{"web", "2.0.0"}})
	mustVersion(t, c, NewVersion{Image: "db", Version: "3.0.0", Parent: &base})
	cps := publishAll(t, c, base, "westeurope")
	publishAll(t, c, Ref{"web", "2.0.0"})
	markTested(t, c, base)
	if _, err := c.Promote(ctx, PromoteRequest{Ref: base, Channel: "prod", By: "ann"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportHost(ctx, Host{Name: "vm-1", Platform: PlatformAzure, Image: "base", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if err := c.ReportHost(ctx, Host{Name: "hv-7", Platform: PlatformOnprem, Image: "web-canary", Version: "2.0.0"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Revoke(ctx, RevokeRequest{Ref: base, By: "sec"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("revoke without reason: %v", err)
	}

	// Without cascade: only base is revoked; descendants are listed and outdated.
	res, err := c.Revoke(ctx, RevokeRequest{Ref: base, Reason: "CVE-2026-0001", By: "sec"})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Revoked) != "[base@1.0.0]" {
		t.Errorf("revoked: %v", res.Revoked)
	}
	if fmt.Sprint(res.Descendants) != "[web@2.0.0 db@3.0.0 web-canary@2.0.0]" {
		t.Errorf("descendants: %v", res.Descendants)
	}
	if len(res.Actions) != 2 || res.Actions[0].Action != ActionMarkOnprem || res.Actions[1].Action != ActionExcludeFromLatest ||
		res.Actions[1].Copy.ID != cps[KindGalleryVersion].ID {
		t.Errorf("actions: %+v", res.Actions)
	}
	if len(res.Hosts) != 1 || res.Hosts[0].Name != "vm-1" {
		t.Errorf("hosts running it: %+v", res.Hosts)
	}
	if len(res.Channels) != 1 || res.Channels[0].Name != "prod" {
		t.Errorf("channels pointing at it: %+v", res.Channels)
	}
	web, err := c.Version(ctx, Ref{"web", "2.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if web.Status != StatusActive || web.Outdated != "parent base@1.0.0 is revoked" {
		t.Errorf("child after non-cascading revoke: status %s outdated %q", web.Status, web.Outdated)
	}
	bv, _ := c.Version(ctx, base)
	if bv.Status != StatusRevoked || bv.Revocation == nil || bv.Revocation.Reason != "CVE-2026-0001" || bv.Revocation.By != "sec" {
		t.Errorf("revoked version: %+v", bv)
	}

	// The outside side, through a Revoker: one failure, one success.
	fr := &fakeRevoker{fail: map[CopyKind]bool{KindOnprem: true}}
	if err := c.ApplyRevocation(ctx, res, fr); err == nil {
		t.Errorf("a failing revoker reported no error")
	}
	after, _ := c.Copies(ctx, base)
	for _, cp := range after {
		switch cp.Kind {
		case KindGalleryVersion:
			if cp.State != StateRevoked {
				t.Errorf("gallery version state %s after revocation applied", cp.State)
			}
		case KindOnprem:
			if cp.State == StateRevoked {
				t.Errorf("on-prem copy marked revoked although its action failed")
			}
		}
	}

	// With cascade, from the root again: every descendant, across images.
	res, err = c.Revoke(ctx, RevokeRequest{Ref: base, Reason: "CVE-2026-0001", By: "sec", Cascade: true})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Revoked) != "[web@2.0.0 db@3.0.0 web-canary@2.0.0]" || fmt.Sprint(res.AlreadyRevoked) != "[base@1.0.0]" {
		t.Errorf("cascade: revoked %v already %v", res.Revoked, res.AlreadyRevoked)
	}
	canary, _ := c.Version(ctx, Ref{"web-canary", "2.0.0"})
	if canary.Status != StatusRevoked || canary.Revocation.Cause == nil || *canary.Revocation.Cause != base {
		t.Errorf("cascaded revocation: %+v", canary.Revocation)
	}
	var hostNames []string
	for _, h := range res.Hosts {
		hostNames = append(hostNames, h.Name)
	}
	if fmt.Sprint(hostNames) != "[hv-7 vm-1]" && fmt.Sprint(hostNames) != "[vm-1 hv-7]" {
		t.Errorf("hosts running revoked versions: %v", hostNames)
	}
	// web's gallery version and on-prem copy need actions; base's gallery
	// version is already revoked, its on-prem copy still needs one.
	kinds := map[string]int{}
	for _, a := range res.Actions {
		kinds[a.Ref.String()+" "+string(a.Copy.Kind)]++
	}
	if kinds["web@2.0.0 gallery_version"] != 1 || kinds["base@1.0.0 onprem"] != 1 || kinds["base@1.0.0 gallery_version"] != 0 {
		t.Errorf("cascade actions: %v", kinds)
	}
}

type fakeRevoker struct {
	mu   sync.Mutex
	fail map[CopyKind]bool
	got  []RevokeAction
}

func (f *fakeRevoker) RevokeCopy(ctx context.Context, a RevokeAction) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.got = append(f.got, a)
	if f.fail[a.Copy.Kind] {
		return errors.New("share not reachable")
	}
	return nil
}

func testOutdated(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	if err := c.SetRequirements(ctx, DefaultRequirementsImage, "prod", nil); err != nil {
		t.Fatal(err)
	}
	mustVersion(t, c, NewVersion{Image: "base", Version: "1.0.0"})
	mustVersion(t, c, NewVersion{Image: "base", Version: "1.1.0"})
	mustVersion(t, c, NewVersion{Image: "app", Version: "5.0.0", Parent: &Ref{"base", "1.0.0"}})
	if _, err := c.Promote(ctx, PromoteRequest{Ref: Ref{"base", "1.0.0"}, Channel: "prod", By: "x"}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Outdated(ctx)
	if err != nil || len(out) != 0 {
		t.Fatalf("child of the channel's newest is outdated: %+v %v", out, err)
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: Ref{"base", "1.1.0"}, Channel: "prod", By: "x"}); err != nil {
		t.Fatal(err)
	}
	out, err = c.Outdated(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 || out[0].Ref() != (Ref{"app", "5.0.0"}) || out[0].Outdated != "parent base@1.0.0 is behind channel prod (1.1.0)" {
		t.Errorf("outdated: %+v", out)
	}
	kids, err := c.Children(ctx, Ref{"base", "1.0.0"})
	if err != nil || len(kids) != 1 {
		t.Errorf("children: %+v %v", kids, err)
	}
}

func testRuns(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	r, err := c.StartRun(ctx, Run{Kind: RunPublish, Image: "web", Version: "1.0.0", By: "ci"})
	if err != nil {
		t.Fatal(err)
	}
	s1, err := c.AddStep(ctx, r.ID, Step{Name: "upload"})
	if err != nil || s1.Seq != 1 || s1.Status != RunRunning {
		t.Fatalf("AddStep: %+v %v", s1, err)
	}
	if err := c.UpdateStep(ctx, r.ID, s1.Seq, RunSucceeded, "12 GiB, 3 GiB sent", []string{"https://acct/vhds/web.vhd"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddStep(ctx, r.ID, Step{Name: "gallery version", Status: RunFailed, Detail: "quota"}); err != nil {
		t.Fatal(err)
	}
	if err := c.FinishRun(ctx, r.ID, errors.New("gallery version: quota")); err != nil {
		t.Fatal(err)
	}
	r2, _ := c.StartRun(ctx, Run{Kind: RunPlan, Image: "db"})
	if err := c.FinishRun(ctx, r2.ID, nil); err != nil {
		t.Fatal(err)
	}
	got, err := c.Run(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != RunFailed || got.Error != "gallery version: quota" || len(got.Steps) != 2 ||
		got.Steps[0].ResourceIDs[0] != "https://acct/vhds/web.vhd" || got.Steps[0].EndedAt.IsZero() || got.Steps[1].Seq != 2 {
		t.Errorf("run: %+v", got)
	}
	list, err := c.Runs(ctx, RunFilter{Image: "web"})
	if err != nil || len(list) != 1 || list[0].ID != r.ID {
		t.Errorf("runs of web: %+v %v", list, err)
	}
	all, _ := c.Runs(ctx, RunFilter{})
	if len(all) != 2 || all[0].ID != r2.ID {
		t.Errorf("all runs, newest first: %+v", all)
	}
	if _, err := c.Run(ctx, 424242); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing run: %v", err)
	}
	if err := c.UpdateStep(ctx, r.ID, 99, RunSucceeded, "", nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing step: %v", err)
	}
}

// testLockSerialisesPublishes runs two "publishes" of one image at once, each
// in its own catalog handle (as two processes would): each takes the image
// lock, reads the newest version, records the next patch version and its
// run with several steps. Without the lock both would pick the same version.
func testLockSerialisesPublishes(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c0 := openAt(t, loc)
	mustVersion(t, c0, NewVersion{Image: "web", Version: "1.0.0", Provenance: Provenance{ArtifactSHA256: "0"}})
	var inside, maxInside atomic.Int32
	publish := func(c *Catalog, who string) error {
		return c.WithImageLock(ctx, "web", who, func(ctx context.Context) error {
			n := inside.Add(1)
			defer inside.Add(-1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			vs, err := c.Versions(ctx, "web")
			if err != nil {
				return err
			}
			cur, _ := ParseVersion(vs[0].Version)
			cur.Patch++
			next := cur.String()
			run, err := c.StartRun(ctx, Run{Kind: RunPublish, Image: "web", Version: next, By: who})
			if err != nil {
				return err
			}
			for _, step := range []string{"upload", "managed image", "gallery version"} {
				st, err := c.AddStep(ctx, run.ID, Step{Name: step})
				if err != nil {
					return err
				}
				time.Sleep(20 * time.Millisecond) // widen the window a missing lock would open
				if err := c.UpdateStep(ctx, run.ID, st.Seq, RunSucceeded, who, nil); err != nil {
					return err
				}
			}
			if _, err := c.AddVersion(ctx, NewVersion{Image: "web", Version: next, Provenance: Provenance{ArtifactSHA256: who}}); err != nil {
				return err
			}
			return c.FinishRun(ctx, run.ID, nil)
		})
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range 2 {
		c := openAt(t, loc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = publish(c, fmt.Sprintf("runner-%d", i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("publish %d: %v", i, err)
		}
	}
	if maxInside.Load() != 1 {
		t.Errorf("%d publishes were inside the lock at once", maxInside.Load())
	}
	vs, _ := c0.Versions(ctx, "web")
	if len(vs) != 3 || vs[0].Version != "1.0.2" || vs[1].Version != "1.0.1" || vs[0].ArtifactSHA256 == vs[1].ArtifactSHA256 {
		t.Errorf("versions after two publishes: %+v", vs)
	}
	runs, _ := c0.Runs(ctx, RunFilter{Image: "web"})
	if len(runs) != 2 {
		t.Fatalf("runs: %+v", runs)
	}
	for _, r := range runs {
		if r.Status != RunSucceeded || len(r.Steps) != 3 {
			t.Errorf("run %d: %s with %d steps", r.ID, r.Status, len(r.Steps))
		}
		for _, s := range r.Steps {
			if s.Detail != r.By { // no step written by the other runner
				t.Errorf("run %d by %s has a step by %s", r.ID, r.By, s.Detail)
			}
		}
	}
	// The lock is free again.
	l, err := c0.LockImage(ctx, "web", "after")
	if err != nil {
		t.Fatal(err)
	}
	_ = l.Unlock(ctx)
}

func testLockTimeout(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c1, c2 := openAt(t, loc), openAt(t, loc)
	l, err := c1.LockImage(ctx, "web", "first")
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = c2.LockImage(short, "web", "second")
	cancel()
	if err == nil {
		t.Fatalf("a second lock on the same image was granted while the first is held")
	}
	// Another image is independent.
	l2, err := c2.LockImage(ctx, "db", "second")
	if err != nil {
		t.Fatalf("lock of another image: %v", err)
	}
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
	l3, err := c2.LockImage(ctx, "web", "second")
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	if err := l3.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

func testFleet(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	if err := c.SetRequirements(ctx, DefaultRequirementsImage, "prod", nil); err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		mustVersion(t, c, NewVersion{Image: "web", Version: v})
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: Ref{"web", "1.2.0"}, Channel: "prod", By: "x"}); err != nil {
		t.Fatal(err)
	}
	reports := []Host{
		{Name: "vm-a", Platform: PlatformAzure, Image: "web", Version: "1.0.0", DriftSummary: []byte(`{"changed":3}`)},
		{Name: "hv-b", Platform: PlatformOnprem, Image: "web", Version: "1.2.0"},
		{Name: "pet", Platform: PlatformOnprem, Image: "legacy", Version: "0.1.0"},
	}
	for _, h := range reports {
		if err := c.ReportHost(ctx, h); err != nil {
			t.Fatal(err)
		}
	}
	for _, bad := range []Host{{Name: "", Platform: PlatformAzure}, {Name: "x", Platform: "mars"}, {Name: "x", Platform: PlatformAzure, DriftSummary: []byte("{")}} {
		if err := c.ReportHost(ctx, bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ReportHost(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	fleet, err := c.Fleet(ctx, "prod")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]HostView{}
	for _, h := range fleet {
		byName[h.Name] = h
	}
	if h := byName["vm-a"]; h.VersionsBehind != 2 || h.ChannelVersion != "1.2.0" || string(h.DriftSummary) != `{"changed":3}` {
		t.Errorf("vm-a: %+v", h)
	}
	if h := byName["hv-b"]; h.VersionsBehind != 0 {
		t.Errorf("hv-b: %+v", h)
	}
	if h := byName["pet"]; !h.Unknown {
		t.Errorf("pet: %+v", h)
	}
	// Baselines round-trip, are replaced, and are per version.
	ref := Ref{"web", "1.2.0"}
	if err := c.PutBaseline(ctx, ref, "json", []byte(`{"files":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.PutBaseline(ctx, ref, "json", []byte(`{"files":2}`)); err != nil {
		t.Fatal(err)
	}
	got, err := c.Baseline(ctx, ref, "json")
	if err != nil || string(got) != `{"files":2}` {
		t.Errorf("baseline: %q %v", got, err)
	}
	if _, err := c.Baseline(ctx, Ref{"web", "1.0.0"}, "json"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing baseline: %v", err)
	}
	if err := c.RemoveHost(ctx, "pet"); err != nil {
		t.Fatal(err)
	}
	hs, _ := c.Hosts(ctx, HostFilter{Image: "web"})
	if len(hs) != 2 {
		t.Errorf("hosts of web: %+v", hs)
	}
}

// testLockHolderDies: a holder that stops renewing (SQLite) or whose
// database session dies (PostgreSQL) loses the lock; another runner gets it
// and the old holder is told.
func testLockHolderDies(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	c1 := openAt(t, loc, WithLockLease(300*time.Millisecond))
	c2 := openAt(t, loc, WithLockLease(300*time.Millisecond))
	l, err := c1.LockImage(ctx, "web", "doomed")
	if err != nil {
		t.Fatal(err)
	}
	if c1.dialect == dialectPostgres {
		var pid int
		if err := l.conn.QueryRowContext(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		if _, err := c2.DB().ExecContext(ctx, "SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
	} else {
		l.halt() // the process froze: no more renewals
	}
	bounded, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	l2, err := c2.LockImage(bounded, "web", "next")
	if err != nil {
		t.Fatalf("the lock of a dead holder was never released: %v", err)
	}
	if c1.dialect == dialectPostgres {
		select {
		case <-l.Lost():
		case <-bounded.Done():
			t.Fatal("the holder was never told it lost the lock")
		}
		if !errors.Is(l.Err(), ErrLockNotHeld) {
			t.Errorf("Err() = %v, want ErrLockNotHeld", l.Err())
		}
	}
	_ = l.Unlock(ctx) // cleaning up a lost lock must not release the new holder's
	short, cancel2 := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel2()
	if _, err := c1.LockImage(short, "web", "thief"); err == nil {
		t.Errorf("the old holder's Unlock released the new holder's lock")
	}
	if err := l2.Unlock(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestLockLeaseLost: a SQLite holder whose row was taken over learns it.
func TestLockLeaseLost(t *testing.T) {
	ctx := context.Background()
	c := openAt(t, filepath.Join(t.TempDir(), "c.db"), WithLockLease(300*time.Millisecond))
	var lostErr error
	err := c.WithImageLock(ctx, "web", "a", func(ctx context.Context) error {
		if _, err := c.DB().ExecContext(ctx, "UPDATE image_locks SET owner = 'someone-else'"); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			lostErr = context.Cause(ctx)
		case <-time.After(15 * time.Second):
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !errors.Is(lostErr, ErrLockNotHeld) {
		t.Errorf("work under a lost lock was not cancelled with ErrLockNotHeld: %v", lostErr)
	}
}

// testLockManyWaiters: more runners wait for one image than the connection
// pool holds; waiting must not starve the holder of a connection.
func testLockManyWaiters(t *testing.T, b backend) {
	c := openAt(t, b.newLocation(t))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	run, err := c.StartRun(ctx, Run{Kind: RunPublish, Image: "web"})
	if err != nil {
		t.Fatal(err)
	}
	const n = 24 // the PostgreSQL pool holds 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- c.WithImageLock(ctx, "web", fmt.Sprint("runner-", i), func(ctx context.Context) error {
				_, err := c.AddStep(ctx, run.ID, Step{Name: fmt.Sprint("step-", i), Status: RunSucceeded})
				return err
			})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a runner failed (pool starved?): %v", err)
		}
	}
	r, err := c.Run(ctx, run.ID)
	if err != nil || len(r.Steps) != n {
		t.Fatalf("steps recorded: %d, %v", len(r.Steps), err)
	}
}
