package server

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
)

var fastPoll = &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}

// pollDone(client.BeginX(...))(t, what) waits for a long-running operation.
func pollDone[T any](p *runtime.Poller[T], err error) func(t *testing.T, what string) T {
	return func(t *testing.T, what string) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		r, err := p.PollUntilDone(context.Background(), fastPoll)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return r
	}
}

// TestAzurePull creates, through the SDK against azemu, a gallery with two
// versions of "web", a VM on 1.0.0, a scale set on the definition (latest),
// a VM from a version the catalog does not know and a VM not made from a
// gallery image; the pull records the first three as azure hosts with their
// staleness, keeps an agent's report, and forgets a deleted VM.
func TestAzurePull(t *testing.T) {
	env := azemutest.Start(t, azemu.Options{})
	ctx := context.Background()
	sub, cred, opts := env.SubscriptionID, env.Credential(), env.ClientOptions()
	rgs, err := armresources.NewResourceGroupsClient(sub, cred, opts)
	must(t, err)
	cf, err := armcompute.NewClientFactory(sub, cred, opts)
	must(t, err)
	loc := "westeurope"
	for _, rg := range []string{"images", "apps"} {
		if _, err := rgs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr(loc)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	disk := pollDone(cf.NewDisksClient().BeginCreateOrUpdate(ctx, "images", "src", armcompute.Disk{
		Location: to.Ptr(loc),
		Properties: &armcompute.DiskProperties{
			CreationData:     &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionEmpty)},
			DiskSizeGB:       to.Ptr[int32](1),
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
			OSType:           to.Ptr(armcompute.OperatingSystemTypesLinux),
		},
	}, nil))(t, "disk")
	pollDone(cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, "images", "gal", armcompute.Gallery{Location: to.Ptr(loc)}, nil))(t, "gallery")
	pollDone(cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, "images", "gal", "web", armcompute.GalleryImage{
		Location: to.Ptr(loc),
		Properties: &armcompute.GalleryImageProperties{
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
			Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("test"), SKU: to.Ptr("web")},
		},
	}, nil))(t, "definition")
	versionIDs := map[string]string{}
	for _, dv := range []struct{ def, v string }{{"web", "1.0.0"}, {"web", "1.1.0"}, {"web", "1.2.0"}, {"api", "0.9.0"}} {
		if dv.v == "0.9.0" {
			pollDone(cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, "images", "gal", "api", armcompute.GalleryImage{
				Location: to.Ptr(loc),
				Properties: &armcompute.GalleryImageProperties{
					OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
					HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
					Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("test"), SKU: to.Ptr("api")},
				},
			}, nil))(t, "definition api")
		}
		r := pollDone(cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, "images", "gal", dv.def, dv.v, armcompute.GalleryImageVersion{
			Location: to.Ptr(loc),
			Properties: &armcompute.GalleryImageVersionProperties{
				PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr(loc), RegionalReplicaCount: to.Ptr[int32](1)}}},
				StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: disk.ID}},
			},
		}, nil))(t, "version "+dv.v)
		versionIDs[dv.v] = *r.ID
	}
	defID := versionIDs["1.0.0"][:strings.Index(versionIDs["1.0.0"], "/versions/")]

	// the catalog knows web 1.0.0, 1.1.0 and 1.2.0 with their gallery versions
	// (not api); prod is at 1.1.0
	cat, err := catalog.Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	must(t, err)
	t.Cleanup(func() { cat.Close() })
	for _, v := range []string{"1.0.0", "1.1.0", "1.2.0"} {
		ref := catalog.Ref{Image: "web", Version: v}
		_, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v, Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat(v[2:3], 64)}})
		must(t, err)
		// recorded as Azure returned it, in another case than VMs will use
		_, err = cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindGalleryVersion, ResourceID: versionIDs[v], Location: loc, State: catalog.StateSucceeded})
		must(t, err)
	}
	catalogtest.Tested(t, cat, catalog.Ref{Image: "web", Version: "1.1.0"})
	_, err = cat.Promote(ctx, catalog.PromoteRequest{Ref: catalog.Ref{Image: "web", Version: "1.1.0"}, Channel: "prod", By: "test"})
	must(t, err)

	vmBody := func(imageID string) armcompute.VirtualMachine {
		return armcompute.VirtualMachine{Location: to.Ptr(loc), Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)},
			StorageProfile:  &armcompute.StorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
		}}
	}
	vms := cf.NewVirtualMachinesClient()
	pollDone(vms.BeginCreateOrUpdate(ctx, "apps", "vm-old", vmBody(strings.ToLower(versionIDs["1.0.0"])), nil))(t, "vm-old")
	pollDone(vms.BeginCreateOrUpdate(ctx, "apps", "vm-api", vmBody(versionIDs["0.9.0"]), nil))(t, "vm-api")
	pollDone(vms.BeginCreateOrUpdate(ctx, "apps", "vm-agent", vmBody(versionIDs["1.1.0"]), nil))(t, "vm-agent")
	pollDone(vms.BeginCreateOrUpdate(ctx, "apps", "vm-plain", armcompute.VirtualMachine{Location: to.Ptr(loc), Properties: &armcompute.VirtualMachineProperties{
		HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)}}}, nil))(t, "vm-plain")
	pollDone(cf.NewVirtualMachineScaleSetsClient().BeginCreateOrUpdate(ctx, "apps", "web-pool", armcompute.VirtualMachineScaleSet{
		Location: to.Ptr(loc),
		SKU:      &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr[int64](2)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
			StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(defID)}},
		}},
	}, nil))(t, "vmss")

	srv, err := New(Config{Catalog: cat, AgentToken: testToken, Azure: &AzurePuller{Subscriptions: []string{sub}, Credential: cred, ClientOptions: opts}})
	must(t, err)
	f := &fixture{cat: cat, srv: srv, creds: map[string]string{}}
	// an agent on vm-agent reported before the pull
	ts := newTLS(t, srv)
	f.ts = ts
	ar := validReport("vm-agent")
	ar.Platform, ar.Version = "azure", "1.1.0"
	ar.Drifted, ar.Summary.FilesChanged = true, 4
	report(t, f, ar)

	// on demand, through the API (token required)
	req, _ := http.NewRequest(http.MethodPost, ts.URL+"/api/azure/refresh", nil)
	resp, err := ts.Client().Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh without a token: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest(http.MethodPost, ts.URL+"/api/azure/refresh", nil)
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err = ts.Client().Do(req)
	must(t, err)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh: %d", resp.StatusCode)
	}
	res := srv.lastPull.Load()
	if res == nil || len(res.Machines) != 4 || res.Skipped != 1 || len(res.Errors) != 0 {
		t.Fatalf("pull result: %+v", res)
	}

	rows := getJSON[[]HostRow](t, f, "/api/hosts", 200)
	got := map[string]HostRow{}
	for _, r := range rows {
		got[r.Name] = r
	}
	if len(got) != 4 {
		t.Fatalf("hosts: %+v", rows)
	}
	tests := []struct {
		host, image, version, status, resolved string
		behind                                 int
	}{
		{"vm-old", "web", "1.0.0", "behind", "catalog copy", 1},
		{"vm-api", "api", "0.9.0", "unknown", "parsed from id (not in catalog)", 0},
		// Azure resolves the definition to its latest version (1.2.0, ahead of prod)
		{"web-pool", "web", "1.2.0", "no-agent", "exact version of latest", 0},
		{"vm-agent", "web", "1.1.0", "drifted", "", 0},
	}
	for _, tc := range tests {
		h, ok := got[tc.host]
		if !ok {
			t.Fatalf("%s not recorded", tc.host)
		}
		if h.Platform != "azure" || h.Image != tc.image || h.Version != tc.version || h.Status != tc.status || h.VersionsBehind != tc.behind ||
			h.State.ImageResolved != tc.resolved || !strings.Contains(strings.ToLower(h.ResourceID), "/resourcegroups/apps/providers/microsoft.compute/") ||
			h.Region != loc {
			t.Errorf("%s: %+v", tc.host, h)
		}
	}
	if s := got["vm-agent"].State; s.Source != SourceAgent || s.Summary == nil || s.Summary.FilesChanged != 4 {
		t.Errorf("the pull overwrote the agent's report: %+v", s)
	}
	if got["web-pool"].State.AzureKind != "vmss" {
		t.Errorf("web-pool kind %q", got["web-pool"].State.AzureKind)
	}

	// a revocation shows on the Azure-only host at the next pull
	_, err = cat.Revoke(ctx, catalog.RevokeRequest{Ref: catalog.Ref{Image: "web", Version: "1.0.0"}, Reason: "bad kernel", By: "test"})
	must(t, err)
	// vm-old is deleted, vm-api is kept: the next pull forgets vm-old
	pollDone(vms.BeginDelete(ctx, "apps", "vm-old", nil))(t, "delete vm-old")
	if _, err := srv.PullAzure(ctx); err != nil {
		t.Fatal(err)
	}
	rows = getJSON[[]HostRow](t, f, "/api/hosts", 200)
	names := []string{}
	for _, r := range rows {
		names = append(names, r.Name)
	}
	if strings.Join(names, ",") != "vm-agent,vm-api,web-pool" {
		t.Fatalf("hosts after vm-old was deleted: %v", names)
	}
	m := scrape(t, f)
	if metricValue(t, m, "imgpipe_azure_pulls_total") != "2" || metricValue(t, m, `imgpipe_hosts{platform="azure"}`) != "3" {
		t.Errorf("metrics after pulls:\n%s", m)
	}
}

// TestResolve covers the mapping without Azure: a catalog copy (any case),
// a definition with and without the exact version Azure reports, and ids
// the catalog does not know.
func TestResolve(t *testing.T) {
	def := "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web"
	web := func(v string) catalog.Version {
		return catalog.Version{Image: "web", Version: v, Status: catalog.StatusActive}
	}
	ix := &copyIndex{
		byID: map[string]catalog.Ref{
			strings.ToLower(def + "/versions/1.0.0"): {Image: "web", Version: "1.0.0"},
			strings.ToLower(def + "/versions/1.1.0"): {Image: "web", Version: "1.1.0"},
		},
		byDef: map[string][]catalog.Version{strings.ToLower(def): {web("1.0.0"), web("1.1.0")}},
	}
	tests := []struct {
		id, exact, image, version, how string
		ok                             bool
	}{
		{strings.ToUpper(def) + "/VERSIONS/1.0.0", "", "web", "1.0.0", "catalog copy", true},
		{def, "", "web", "1.1.0", "latest in catalog", true},
		{def, "1.0.0", "web", "1.0.0", "exact version of latest", true},
		{def, "7.0.0", "web", "7.0.0", "exact version (not in catalog)", true},
		{def + "/versions/2.0.0", "", "web", "2.0.0", "parsed from id (not in catalog)", true},
		{strings.Replace(def, "/web", "/api", 1), "", "api", "", "latest (no version in catalog)", true},
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/managed", "", "", "", "", false},
	}
	for _, tc := range tests {
		ref, how, ok := ix.resolve(tc.id, tc.exact)
		if ok != tc.ok || ref.Image != tc.image || ref.Version != tc.version || how != tc.how {
			t.Errorf("resolve(%s, %q) = %v %q %v", tc.id, tc.exact, ref, how, ok)
		}
	}
}

func TestParseGalleryRef(t *testing.T) {
	tests := []struct {
		id       string
		ok       bool
		def, ver string
	}{
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web/versions/1.2.3", true, "web", "1.2.3"},
		{"/SUBSCRIPTIONS/s/resourcegroups/r/providers/microsoft.compute/GALLERIES/g/IMAGES/web", true, "web", ""},
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/images/managed", false, "", ""},
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web/versions/", false, "", ""},
		{"/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web/extra/x/y", false, "", ""},
		{"", false, "", ""},
	}
	for _, tc := range tests {
		g, ok := parseGalleryRef(tc.id)
		if ok != tc.ok || g.definition != tc.def || g.version != tc.ver {
			t.Errorf("%q: %+v %v", tc.id, g, ok)
		}
	}
}

func FuzzParseGalleryRef(f *testing.F) {
	f.Add("/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/galleries/g/images/web/versions/1.2.3")
	f.Add("galleries/images/versions")
	f.Add("//galleries//images//")
	f.Fuzz(func(t *testing.T, id string) {
		g, ok := parseGalleryRef(id)
		if ok && (g.definition == "" || !strings.HasSuffix(g.definitionID, strings.ToLower(g.definition))) {
			t.Fatalf("%q: %+v", id, g)
		}
	})
}
