package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
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
	"imgpipe/internal/testenv"
)

// TestServeReplicasPullAzureOnce: two `imgpipe serve` processes on one
// PostgreSQL catalog, both with --azure-subscription against azemu and
// --azure-interval 3s, pull Azure once per interval between them (the
// claim is in the catalog): watched through both replicas' /metrics for
// 18 s, the pulls come one at a time, at least an interval apart, and keep
// coming. Both serve the pulled VMs (with their location as region), and
// a VM created meanwhile reaches both after the next pull, whichever
// replica runs it.
func TestServeReplicasPullAzureOnce(t *testing.T) {
	pg := testenv.StartPostgres(t)
	loc := pg.NewDatabase(t)
	env := azemutest.Start(t, azemu.Options{})
	ctx := context.Background()
	sub, cred, opts := env.SubscriptionID, env.Credential(), env.ClientOptions()
	poll := &runtime.PollUntilDoneOptions{Frequency: 50 * time.Millisecond}
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	rgs, err := armresources.NewResourceGroupsClient(sub, cred, opts)
	must("resource groups", err)
	cf, err := armcompute.NewClientFactory(sub, cred, opts)
	must("compute", err)
	const region = "westeurope"
	for _, rg := range []string{"images", "apps"} {
		_, err := rgs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr(region)}, nil)
		must("resource group "+rg, err)
	}
	dp, err := cf.NewDisksClient().BeginCreateOrUpdate(ctx, "images", "src", armcompute.Disk{Location: to.Ptr(region),
		Properties: &armcompute.DiskProperties{CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionEmpty)},
			DiskSizeGB: to.Ptr[int32](1), HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2), OSType: to.Ptr(armcompute.OperatingSystemTypesLinux)}}, nil)
	must("disk", err)
	disk, err := dp.PollUntilDone(ctx, poll)
	must("disk", err)
	gp, err := cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, "images", "gal", armcompute.Gallery{Location: to.Ptr(region)}, nil)
	must("gallery", err)
	_, err = gp.PollUntilDone(ctx, poll)
	must("gallery", err)
	ip, err := cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, "images", "gal", "web", armcompute.GalleryImage{Location: to.Ptr(region),
		Properties: &armcompute.GalleryImageProperties{OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
			Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("test"), SKU: to.Ptr("web")}}}, nil)
	must("definition", err)
	_, err = ip.PollUntilDone(ctx, poll)
	must("definition", err)
	vp, err := cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, "images", "gal", "web", "1.0.0", armcompute.GalleryImageVersion{Location: to.Ptr(region),
		Properties: &armcompute.GalleryImageVersionProperties{
			PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr(region), RegionalReplicaCount: to.Ptr[int32](1)}}},
			StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: disk.ID}}}}, nil)
	must("version", err)
	gv, err := vp.PollUntilDone(ctx, poll)
	must("version", err)
	vms := cf.NewVirtualMachinesClient()
	newVM := func(name string) {
		t.Helper()
		p, err := vms.BeginCreateOrUpdate(ctx, "apps", name, armcompute.VirtualMachine{Location: to.Ptr(region), Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)},
			StorageProfile:  &armcompute.StorageProfile{ImageReference: &armcompute.ImageReference{ID: gv.ID}}}}, nil)
		must("vm "+name, err)
		_, err = p.PollUntilDone(ctx, poll)
		must("vm "+name, err)
	}
	newVM("vm-a")

	cat, err := catalog.Open(ctx, loc)
	must("catalog", err)
	_, err = cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: "1.0.0", Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat("a", 64)}})
	must("version", err)
	_, err = cat.PutCopy(ctx, catalog.Ref{Image: "web", Version: "1.0.0"}, catalog.Copy{Kind: catalog.KindGalleryVersion, ResourceID: *gv.ID, Location: region, State: catalog.StateSucceeded})
	must("copy", err)
	cat.Close()

	// the serve processes reach azemu the way `imgpipe emulator` says
	dir := t.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	must("ca", os.WriteFile(ca, env.Server.CACertPEM(), 0o644))
	o := env.Server.Options()
	for k, v := range map[string]string{"IMGPIPE_ARM_ENDPOINT": env.Server.URL(), "IMGPIPE_CA_CERT": ca, "AZURE_AUTHORITY_HOST": env.Server.URL(),
		"AZURE_TENANT_ID": o.TenantID, "AZURE_CLIENT_ID": o.ClientID, "AZURE_CLIENT_SECRET": o.ClientSecret} {
		t.Setenv(k, v)
	}
	const interval = 3 * time.Second
	args := []string{"--catalog", loc, "--azure-subscription", sub, "--azure-interval", interval.String()}
	reps := []*serveProc{startServe(t, dir, "r0", args...), startServe(t, dir, "r1", args...)}

	get := func(p *serveProc, path string) string {
		t.Helper()
		resp, err := http.Get("http://" + p.addr + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return string(b)
	}
	pullsRE := regexp.MustCompile(`(?m)^imgpipe_azure_pulls_total (\d+)$`)
	pulls := func(p *serveProc) int {
		t.Helper()
		m := pullsRE.FindStringSubmatch(get(p, "/metrics"))
		if m == nil {
			t.Fatalf("no imgpipe_azure_pulls_total in the metrics of %s", p.addr)
		}
		n, _ := strconv.Atoi(m[1])
		return n
	}
	// hostsOf is the azure hosts a replica serves, with their regions.
	hostsOf := func(p *serveProc) map[string]string {
		t.Helper()
		var rows []struct{ Name, Platform, Region string }
		must("hosts", json.Unmarshal([]byte(get(p, "/api/hosts?platform=azure")), &rows))
		out := map[string]string{}
		for _, r := range rows {
			out[r.Name] = r.Region
		}
		return out
	}

	// watch the pulls through both replicas' counters
	const watch = 18 * time.Second
	var at []time.Duration // when the sum of the counters went up (by one)
	last, added := pulls(reps[0])+pulls(reps[1]), false
	start := time.Now()
	for time.Since(start) < watch {
		n0, n1 := pulls(reps[0]), pulls(reps[1])
		if n := n0 + n1; n != last {
			if n-last != 1 {
				t.Fatalf("%d pulls within one 100 ms sample at %v (r0 %d, r1 %d): the replicas pulled together", n-last, time.Since(start).Round(time.Millisecond), n0, n1)
			}
			at = append(at, time.Since(start))
			last = n
		}
		if !added && time.Since(start) > watch/3 {
			newVM("vm-b") // created between pulls: the next one, by either replica, records it
			added = true
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("pulls at %v (r0 %d, r1 %d)", at, pulls(reps[0]), pulls(reps[1]))
	for i := 1; i < len(at); i++ {
		if gap := at[i] - at[i-1]; gap < interval-time.Second { // sampling is coarse on a loaded machine; the count below is exact
			t.Errorf("pulls %d and %d only %v apart; the interval is %v", i, i+1, gap.Round(time.Millisecond), interval)
		}
	}
	// the first pull is at the start; then one every interval plus at most
	// a jittered tick (interval/2 * 3/2) and the pull itself
	if min := int(watch / (interval + interval*3/4 + time.Second)); len(at) < min {
		t.Errorf("%d pulls in %v, want at least %d", len(at), watch, min)
	}
	if max := int(watch/interval) + 1; len(at) > max {
		t.Errorf("%d pulls in %v, at most %d expected", len(at), watch, max)
	}
	for i, p := range reps {
		got := hostsOf(p)
		if len(got) != 2 || got["vm-a"] != region || got["vm-b"] != region {
			t.Errorf("replica r%d serves %v, want vm-a and vm-b in %s", i, got, region)
		}
	}
	if t.Failed() {
		for _, p := range reps {
			fmt.Fprintln(os.Stderr, p.tail())
		}
	}
}
