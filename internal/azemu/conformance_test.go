package azemu_test

// The conformance suite: Azure semantics imgpipe relies on, checked through
// the unmodified SDK clients. It runs against azemu (with Azurite) by
// default, and against a real subscription when these are set:
//
//	IMGPIPE_TEST_AZURE_SUBSCRIPTION_ID, IMGPIPE_TEST_AZURE_TENANT_ID,
//	IMGPIPE_TEST_AZURE_CLIENT_ID, IMGPIPE_TEST_AZURE_CLIENT_SECRET,
//	IMGPIPE_TEST_AZURE_LOCATION (and optionally IMGPIPE_TEST_AZURE_LOCATION2,
//	IMGPIPE_TEST_AZURE_STORAGE_CONNECTION_STRING with
//	IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID for blob sources).
//
// Set IMGPIPE_TEST_AZURE_TARGET=azure to run only against Azure. Steps that
// need the emulator's inspection or timing knobs (fault injection, the
// fingerprint a copy recorded, VMs without networks) skip on Azure.

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

type suite struct {
	real       bool
	sub, sub2  string
	loc, loc2  string
	cred       azcore.TokenCredential
	opts       *arm.ClientOptions
	env        *azemutest.Env
	blobs      *azblob.Client
	blobBase   string // URL of the account, no trailing slash
	storageID  string // storage account resource id for VHD sources
	principal  string // object id of the identity running the suite
	ctx        context.Context
	rgs        *armresources.ResourceGroupsClient
	images     *armcompute.ImagesClient
	galleries  *armcompute.GalleriesClient
	defs       *armcompute.GalleryImagesClient
	versions   *armcompute.GalleryImageVersionsClient
	disks      *armcompute.DisksClient
	vms        *armcompute.VirtualMachinesClient
	vmss       *armcompute.VirtualMachineScaleSetsClient
	roles      *armauthorization.RoleAssignmentsClient
	other      *armcompute.VirtualMachinesClient // VMs in sub2
	otherRGs   *armresources.ResourceGroupsClient
	counter    int
	containerN string
}

func envv(k string) string { return os.Getenv("IMGPIPE_TEST_AZURE_" + k) }

func newSuite(t *testing.T) *suite {
	t.Helper()
	s := &suite{ctx: context.Background()}
	if envv("SUBSCRIPTION_ID") != "" && envv("TENANT_ID") != "" && envv("CLIENT_ID") != "" && envv("CLIENT_SECRET") != "" && envv("LOCATION") != "" {
		s.real = true
		s.sub, s.loc, s.loc2 = envv("SUBSCRIPTION_ID"), envv("LOCATION"), envv("LOCATION2")
		s.sub2 = envv("SUBSCRIPTION_ID_2")
		cred, err := azidentity.NewClientSecretCredential(envv("TENANT_ID"), envv("CLIENT_ID"), envv("CLIENT_SECRET"), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.cred, s.principal = cred, envv("PRINCIPAL_ID")
		if cs := envv("STORAGE_CONNECTION_STRING"); cs != "" {
			c, err := azblob.NewClientFromConnectionString(cs, nil)
			if err != nil {
				t.Fatal(err)
			}
			s.blobs, s.blobBase, s.storageID = c, strings.TrimRight(c.URL(), "/"), envv("STORAGE_ACCOUNT_ID")
		}
	} else {
		if envv("TARGET") == "azure" {
			t.Skip("IMGPIPE_TEST_AZURE_TARGET=azure but the IMGPIPE_TEST_AZURE_* credentials are not set")
		}
		s.env = azemutest.StartWithAzurite(t, azemu.Options{
			// a second identity, with no implicit access (conformance_rules_test.go)
			ExtraClients: []azemu.Client{{ClientID: client2ID, ClientSecret: client2Secret, ObjectID: principal2ID}},
		})
		s.sub, s.sub2 = s.env.SubscriptionID, "99999999-8888-4777-8666-555555555555"
		s.loc, s.loc2 = "westeurope", "northeurope"
		s.cred, s.opts = s.env.Credential(), s.env.ClientOptions()
		s.principal = azemu.DefaultObjectID
		c, err := azblob.NewClientFromConnectionString(s.env.Azurite.ConnectionString(), nil)
		if err != nil {
			t.Fatal(err)
		}
		s.blobs, s.blobBase = c, s.env.Azurite.BlobEndpoint
		s.storageID = s.env.StorageAccountID()
	}
	var err error
	must := func(e error) {
		if e != nil {
			t.Fatal(e)
		}
	}
	s.rgs, err = armresources.NewResourceGroupsClient(s.sub, s.cred, s.opts)
	must(err)
	cf, err := armcompute.NewClientFactory(s.sub, s.cred, s.opts)
	must(err)
	s.images, s.galleries, s.defs, s.versions = cf.NewImagesClient(), cf.NewGalleriesClient(), cf.NewGalleryImagesClient(), cf.NewGalleryImageVersionsClient()
	s.disks, s.vms, s.vmss = cf.NewDisksClient(), cf.NewVirtualMachinesClient(), cf.NewVirtualMachineScaleSetsClient()
	s.roles, err = armauthorization.NewRoleAssignmentsClient(s.sub, s.cred, s.opts)
	must(err)
	if s.sub2 != "" {
		s.other, err = armcompute.NewVirtualMachinesClient(s.sub2, s.cred, s.opts)
		must(err)
		s.otherRGs, err = armresources.NewResourceGroupsClient(s.sub2, s.cred, s.opts)
		must(err)
	}
	s.containerN = fmt.Sprintf("conformance%d", time.Now().UnixNano()%1e9)
	if s.blobs != nil {
		if _, err := s.blobs.CreateContainer(s.ctx, s.containerN, nil); err != nil {
			t.Fatalf("create container: %v", err)
		}
	}
	return s
}

// propagation is how long a role assignment may take to take effect: the
// emulator's delay with some slack, Azure's documented worst case.
func (s *suite) propagation() time.Duration {
	if s.real {
		return 15 * time.Minute
	}
	return s.env.Server.Options().RBACDelay + 5*time.Second
}

func (s *suite) emuOnly(t *testing.T, why string) {
	t.Helper()
	if s.real {
		t.Skipf("emulator only: %s", why)
	}
}

func (s *suite) name(prefix string) string {
	s.counter++
	return fmt.Sprintf("%s%d%d", prefix, time.Now().Unix()%100000, s.counter)
}

// rg creates a resource group deleted at the end of the test.
func (s *suite) rg(t *testing.T) string {
	t.Helper()
	n := s.name("imgpipe-conf-")
	if _, err := s.rgs.CreateOrUpdate(s.ctx, n, armresources.ResourceGroup{Location: to.Ptr(s.loc)}, nil); err != nil {
		t.Fatalf("create resource group: %v", err)
	}
	t.Cleanup(func() {
		if p, err := s.rgs.BeginDelete(context.Background(), n, nil); err == nil {
			_, _ = p.PollUntilDone(context.Background(), &runtime.PollUntilDoneOptions{Frequency: time.Second})
		}
	})
	return n
}

var pollFast = &runtime.PollUntilDoneOptions{Frequency: time.Second}

// upload writes content as a page blob (padded to 512 bytes) and returns its URL.
func (s *suite) upload(t *testing.T, name string, content []byte) string {
	t.Helper()
	if s.blobs == nil {
		t.Skip("no storage account configured (IMGPIPE_TEST_AZURE_STORAGE_CONNECTION_STRING)")
	}
	data := append([]byte(nil), content...)
	if r := len(data) % 512; r != 0 {
		data = append(data, make([]byte, 512-r)...)
	}
	pb := s.blobs.ServiceClient().NewContainerClient(s.containerN).NewPageBlobClient(name)
	if _, err := pb.Create(s.ctx, int64(len(data)), nil); err != nil {
		t.Fatalf("create page blob: %v", err)
	}
	if _, err := pb.UploadPages(s.ctx, streaming.NopCloser(bytes.NewReader(data)), blob.HTTPRange{Offset: 0, Count: int64(len(data))}, nil); err != nil {
		t.Fatalf("upload pages: %v", err)
	}
	return s.blobBase + "/" + s.containerN + "/" + name
}

func md5hex(content []byte) string {
	data := append([]byte(nil), content...)
	if r := len(data) % 512; r != 0 {
		data = append(data, make([]byte, 512-r)...)
	}
	h := md5.Sum(data)
	return hex.EncodeToString(h[:])
}

func (s *suite) image(t *testing.T, rg, name, blobURL, gen string) *armcompute.Image {
	t.Helper()
	p, err := s.images.BeginCreateOrUpdate(s.ctx, rg, name, armcompute.Image{
		Location: to.Ptr(s.loc),
		Properties: &armcompute.ImageProperties{
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypes(gen)),
			StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
				OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
				BlobURI: to.Ptr(blobURL),
			}},
		},
	}, nil)
	if err != nil {
		t.Fatalf("create image: %v", err)
	}
	r, err := p.PollUntilDone(s.ctx, pollFast)
	if err != nil {
		t.Fatalf("create image: %v", err)
	}
	return &r.Image
}

func (s *suite) gallery(t *testing.T, rg, name string) {
	t.Helper()
	p, err := s.galleries.BeginCreateOrUpdate(s.ctx, rg, name, armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
	if err != nil {
		t.Fatalf("create gallery: %v", err)
	}
	if _, err := p.PollUntilDone(s.ctx, pollFast); err != nil {
		t.Fatalf("create gallery: %v", err)
	}
}

func defBody(loc, gen, sku string) armcompute.GalleryImage {
	return armcompute.GalleryImage{
		Location: to.Ptr(loc),
		Properties: &armcompute.GalleryImageProperties{
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
			HyperVGeneration: to.Ptr(armcompute.HyperVGeneration(gen)),
			Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("imgpipe"), Offer: to.Ptr("conformance"), SKU: to.Ptr(sku)},
		},
	}
}

func (s *suite) definition(t *testing.T, rg, g, name, gen string) {
	t.Helper()
	p, err := s.defs.BeginCreateOrUpdate(s.ctx, rg, g, name, defBody(s.loc, gen, name), nil)
	if err != nil {
		t.Fatalf("create definition: %v", err)
	}
	if _, err := p.PollUntilDone(s.ctx, pollFast); err != nil {
		t.Fatalf("create definition: %v", err)
	}
}

func versionBody(loc, sourceID string, regions ...string) armcompute.GalleryImageVersion {
	var trs []*armcompute.TargetRegion
	for _, r := range append([]string{loc}, regions...) {
		trs = append(trs, &armcompute.TargetRegion{Name: to.Ptr(r), RegionalReplicaCount: to.Ptr[int32](1)})
	}
	return armcompute.GalleryImageVersion{
		Location: to.Ptr(loc),
		Properties: &armcompute.GalleryImageVersionProperties{
			PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: trs},
			StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{Source: &armcompute.GalleryArtifactVersionFullSource{ID: to.Ptr(sourceID)}},
		},
	}
}

func (s *suite) version(t *testing.T, rg, g, d, v, sourceID string, regions ...string) *armcompute.GalleryImageVersion {
	t.Helper()
	p, err := s.versions.BeginCreateOrUpdate(s.ctx, rg, g, d, v, versionBody(s.loc, sourceID, regions...), nil)
	if err != nil {
		t.Fatalf("create version: %v", err)
	}
	r, err := p.PollUntilDone(s.ctx, pollFast)
	if err != nil {
		t.Fatalf("create version: %v", err)
	}
	return &r.GalleryImageVersion
}

func deleteAndWait[T any](t *testing.T, p *runtime.Poller[T], err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := p.PollUntilDone(context.Background(), pollFast); err != nil {
		t.Fatalf("delete: %v", err)
	}
}

// wantCode checks an error is an ARM error with that status and code.
func wantCode(t *testing.T, err error, status int, code string) *azcore.ResponseError {
	t.Helper()
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		t.Fatalf("want %d %s, got %v", status, code, err)
	}
	if re.StatusCode != status || re.ErrorCode != code {
		t.Fatalf("want %d %s, got %d %s: %v", status, code, re.StatusCode, re.ErrorCode, err)
	}
	return re
}

func (s *suite) vm(rg, name, loc, imageID string) armcompute.VirtualMachine {
	return armcompute.VirtualMachine{
		Location: to.Ptr(loc),
		Properties: &armcompute.VirtualMachineProperties{
			HardwareProfile: &armcompute.HardwareProfile{VMSize: to.Ptr(armcompute.VirtualMachineSizeTypesStandardB1S)},
			StorageProfile:  &armcompute.StorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
		},
	}
}

func (s *suite) createVM(ctx context.Context, c *armcompute.VirtualMachinesClient, rg, name, loc, imageID string) error {
	p, err := c.BeginCreateOrUpdate(ctx, rg, name, s.vm(rg, name, loc, imageID), nil)
	if err != nil {
		return err
	}
	_, err = p.PollUntilDone(ctx, pollFast)
	return err
}

func TestConformance(t *testing.T) {
	s := newSuite(t)
	ctx := s.ctx

	t.Run("LROPollingAndStatusCodes", func(t *testing.T) {
		rg := s.rg(t)
		var raw *http.Response
		p, err := s.galleries.BeginCreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), rg, "lro", armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if raw.StatusCode != http.StatusCreated || raw.Header.Get("Azure-AsyncOperation") == "" {
			t.Fatalf("gallery create: status %d, Azure-AsyncOperation %q; want 201 with the header", raw.StatusCode, raw.Header.Get("Azure-AsyncOperation"))
		}
		polls := 0
		for !p.Done() {
			if _, err := p.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			polls++
			if polls > 600 {
				t.Fatal("poller never finished")
			}
			time.Sleep(50 * time.Millisecond)
		}
		res, err := p.Result(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if polls < 1 || *res.Properties.ProvisioningState != armcompute.GalleryProvisioningStateSucceeded {
			t.Fatalf("polls %d, state %s", polls, *res.Properties.ProvisioningState)
		}
		// the second PUT is an update: 200
		p, err = s.galleries.BeginCreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), rg, "lro", armcompute.Gallery{Location: to.Ptr(s.loc), Properties: &armcompute.GalleryProperties{Description: to.Ptr("updated")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if raw.StatusCode != http.StatusOK {
			t.Fatalf("gallery update: status %d, want 200", raw.StatusCode)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		// DELETE: 202 with Azure-AsyncOperation, Location and Retry-After
		dp, err := s.galleries.BeginDelete(runtime.WithCaptureResponse(ctx, &raw), rg, "lro", nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range []string{"Azure-AsyncOperation", "Location", "Retry-After"} {
			if raw.Header.Get(h) == "" {
				t.Errorf("delete 202 lacks %s", h)
			}
		}
		if raw.StatusCode != http.StatusAccepted {
			t.Errorf("delete status %d, want 202", raw.StatusCode)
		}
		deleteAndWait(t, dp, nil)
		if _, err := s.galleries.Get(ctx, rg, "lro", nil); err == nil {
			t.Fatal("gallery still there after delete")
		} else {
			wantCode(t, err, 404, "ResourceNotFound")
		}
	})

	t.Run("OperationStatusBody", func(t *testing.T) {
		s.emuOnly(t, "reads the status endpoint with raw requests")
		rg := s.rg(t)
		var raw *http.Response
		_, err := s.galleries.BeginCreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), rg, "opstatus", armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		body := rawJSON(t, s.env, http.MethodGet, raw.Header.Get("Azure-AsyncOperation"), nil, 200)
		for _, f := range []string{"id", "name", "status", "startTime", "percentComplete"} {
			if _, ok := body[f]; !ok {
				t.Errorf("operation status lacks %s: %v", f, body)
			}
		}
		for body["status"] == "InProgress" {
			time.Sleep(50 * time.Millisecond)
			body = rawJSON(t, s.env, http.MethodGet, raw.Header.Get("Azure-AsyncOperation"), nil, 200)
		}
		if body["status"] != "Succeeded" || body["endTime"] == nil {
			t.Fatalf("final status %v", body)
		}
	})

	t.Run("ApiVersionAndAuth", func(t *testing.T) {
		s.emuOnly(t, "raw requests")
		rg := s.rg(t)
		base := s.env.Server.URL() + "/subscriptions/" + s.sub + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/galleries/x"
		for _, tc := range []struct {
			query, code string
			status      int
		}{
			{"", "MissingApiVersionParameter", 400},
			{"?api-version=1999-01-01", "NoRegisteredProviderFound", 400},
			{"?api-version=2026-03-03", "ResourceNotFound", 404},
		} {
			body := rawJSON(t, s.env, http.MethodGet, base+tc.query, nil, tc.status)
			if code := errCode(body); code != tc.code {
				t.Errorf("%s: code %s, want %s", tc.query, code, tc.code)
			}
		}
		body := rawJSON(t, s.env, http.MethodGet, s.env.Server.URL()+"/subscriptions/"+s.sub+"/resourcegroups/"+rg+"?api-version=1999-01-01", nil, 400)
		if errCode(body) != "InvalidApiVersionParameter" || !strings.Contains(fmt.Sprint(body), "2021-04-01") {
			t.Errorf("resource group bad api-version: %v", body)
		}
		req, _ := http.NewRequest(http.MethodGet, base+"?api-version=2026-03-03", nil)
		resp, err := s.env.HTTPClient().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("no token: status %d, want 401", resp.StatusCode)
		}
	})

	t.Run("Paging", func(t *testing.T) {
		rg := s.rg(t)
		s.gallery(t, rg, "paging")
		n := 5
		for i := 0; i < n; i++ {
			s.definition(t, rg, "paging", fmt.Sprintf("def%d", i), "V2")
		}
		if !s.real {
			// force several pages
			restore := s.env.Server.SetPageSize(2)
			defer restore()
		}
		pages, items := 0, 0
		pager := s.defs.NewListByGalleryPager(rg, "paging", nil)
		for pager.More() {
			pg, err := pager.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			items += len(pg.Value)
			if pg.NextLink != nil && !strings.Contains(*pg.NextLink, "api-version=") {
				t.Fatalf("nextLink without api-version: %s", *pg.NextLink)
			}
		}
		if items != n || (!s.real && pages != 3) {
			t.Fatalf("listed %d items on %d pages, want %d items (3 pages)", items, pages, n)
		}
	})

	t.Run("UnknownLocation", func(t *testing.T) {
		rg := s.rg(t)
		_, err := s.galleries.BeginCreateOrUpdate(ctx, rg, "g", armcompute.Gallery{Location: to.Ptr("middleearth")}, nil)
		wantCode(t, err, 400, "LocationNotAvailableForResourceType")
	})

	t.Run("ResourceGroupNotFound", func(t *testing.T) {
		_, err := s.galleries.BeginCreateOrUpdate(ctx, "imgpipe-conf-missing-rg", "g", armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
		wantCode(t, err, 404, "ResourceGroupNotFound")
	})

	t.Run("NestedDeleteConflicts", func(t *testing.T) {
		rg := s.rg(t)
		if !s.real {
			s.env.Server.SetDeleteConflictWindow(3 * time.Second)
			defer s.env.Server.SetDeleteConflictWindow(azemutest.TestDeleteConflictWindow)
		}
		s.gallery(t, rg, "nested")
		s.definition(t, rg, "nested", "def", "V2")
		_, err := s.galleries.BeginDelete(ctx, rg, "nested", nil)
		re := wantCode(t, err, 409, "CannotDeleteResource")
		if !strings.Contains(re.Error(), "/galleries/nested/images/def") {
			t.Fatalf("409 does not name the nested definition: %v", re)
		}
		p, err := s.defs.BeginDelete(ctx, rg, "nested", "def", nil)
		deleteAndWait(t, p, err)
		// ARM's cache lags: the same 409 right after the child is gone
		_, err = s.galleries.BeginDelete(ctx, rg, "nested", nil)
		if !s.real {
			wantCode(t, err, 409, "CannotDeleteResource")
		}
		// ...until it clears: retry like a client must
		deadline := time.Now().Add(60 * time.Second)
		for {
			p, err := s.galleries.BeginDelete(ctx, rg, "nested", nil)
			if err == nil {
				deleteAndWait(t, p, nil)
				break
			}
			wantCode(t, err, 409, "CannotDeleteResource")
			if time.Now().After(deadline) {
				t.Fatal("gallery delete kept conflicting")
			}
			time.Sleep(500 * time.Millisecond)
		}
	})

	t.Run("DefinitionWithVersionsCannotBeDeleted", func(t *testing.T) {
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V2")
		img := s.image(t, rg, "img", s.upload(t, s.name("v")+".vhd", []byte("version source")), "V2")
		s.version(t, rg, "g", "d", "1.0.0", *img.ID)
		_, err := s.defs.BeginDelete(ctx, rg, "g", "d", nil)
		re := wantCode(t, err, 409, "CannotDeleteResource")
		if !strings.Contains(re.Error(), "/versions/1.0.0") {
			t.Fatalf("409 does not name the version: %v", re)
		}
	})

	t.Run("VersionNames", func(t *testing.T) {
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		img := s.image(t, rg, "img", s.upload(t, s.name("n")+".vhd", []byte("names")), "V1")
		for _, name := range []string{"1.0", "1.0.0.0", "a.b.c", "2147483648.0.0", "1.-1.0", "01.0.x"} {
			_, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "d", name, versionBody(s.loc, *img.ID), nil)
			if err == nil {
				t.Errorf("version name %q accepted", name)
				continue
			}
			wantCode(t, err, 400, "InvalidParameter")
		}
		s.version(t, rg, "g", "d", "2147483647.0.1", *img.ID)
	})

	t.Run("DefinitionImmutableProperties", func(t *testing.T) {
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		for _, tc := range []struct {
			name   string
			change func(*armcompute.GalleryImage)
		}{
			{"hyperVGeneration", func(g *armcompute.GalleryImage) {
				g.Properties.HyperVGeneration = to.Ptr(armcompute.HyperVGenerationV2)
			}},
			{"osType", func(g *armcompute.GalleryImage) { g.Properties.OSType = to.Ptr(armcompute.OperatingSystemTypesWindows) }},
			{"osState", func(g *armcompute.GalleryImage) {
				g.Properties.OSState = to.Ptr(armcompute.OperatingSystemStateTypesSpecialized)
			}},
			{"identifier", func(g *armcompute.GalleryImage) { g.Properties.Identifier.SKU = to.Ptr("other") }},
		} {
			b := defBody(s.loc, "V1", "d")
			tc.change(&b)
			_, err := s.defs.BeginCreateOrUpdate(ctx, rg, "g", "d", b, nil)
			re := wantCode(t, err, 409, "PropertyChangeNotAllowed")
			if !strings.Contains(re.Error(), tc.name) {
				t.Errorf("%s: message does not name the property: %v", tc.name, re)
			}
		}
		// a mutable property may change
		b := defBody(s.loc, "V1", "d")
		b.Properties.Description = to.Ptr("new description")
		p, err := s.defs.BeginCreateOrUpdate(ctx, rg, "g", "d", b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("Gen2SourceRefusedByV1Definition", func(t *testing.T) {
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "v1def", "V1")
		img := s.image(t, rg, "gen2", s.upload(t, s.name("g2")+".vhd", []byte("gen2 image")), "V2")
		// Azure accepts the PUT; the long-running operation then fails with
		// Conflict naming both generations (sources.go).
		p, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "v1def", "1.0.0", versionBody(s.loc, *img.ID), nil)
		if err != nil {
			t.Fatalf("the PUT itself was refused (%v); Azure accepts it and fails the operation", err)
		}
		_, err = p.PollUntilDone(ctx, pollFast)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != "Conflict" {
			t.Fatalf("want a failed operation with code Conflict, got %v", err)
		}
		if !strings.Contains(err.Error(), "['V2']") || !strings.Contains(err.Error(), "['V1']") || !strings.Contains(err.Error(), "Hypervisor generation") {
			t.Fatalf("the Conflict does not name the generations: %v", err)
		}
	})

	t.Run("VHDSourceTakesTheDefinitionGeneration", func(t *testing.T) {
		if s.storageID == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID")
		}
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		for _, gen := range []string{"V1", "V2"} {
			s.definition(t, rg, "g", "d"+gen, gen)
			u := s.upload(t, s.name("vhd")+".vhd", []byte("a VHD has no generation of its own"))
			b := versionBody(s.loc, "")
			b.Properties.StorageProfile = &armcompute.GalleryImageVersionStorageProfile{OSDiskImage: &armcompute.GalleryOSDiskImage{
				Source: &armcompute.GalleryDiskImageSource{URI: to.Ptr(u), StorageAccountID: to.Ptr(s.storageID)},
			}}
			p, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "d"+gen, "1.0.0", b, nil)
			if err != nil {
				t.Fatalf("%s definition: %v", gen, err)
			}
			if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
				t.Fatalf("%s definition: %v", gen, err)
			}
		}
	})

	t.Run("ManagedImageIsACopyOfItsBlob", func(t *testing.T) {
		rg := s.rg(t)
		name := s.name("copy") + ".vhd"
		first := []byte("the original content")
		u := s.upload(t, name, first)
		img := s.image(t, rg, "img", u, "V1")
		// replace the blob, then delete it
		s.upload(t, name, []byte("replaced content, different bytes"))
		if !s.real {
			fp, ok := s.env.Server.Fingerprint(*img.ID)
			if !ok || fp.MD5 != md5hex(first) {
				t.Fatalf("image fingerprint %+v, want MD5 of the original %s", fp, md5hex(first))
			}
		}
		if _, err := s.blobs.DeleteBlob(ctx, s.containerN, name, nil); err != nil {
			t.Fatal(err)
		}
		got, err := s.images.Get(ctx, rg, "img", nil)
		if err != nil || *got.Properties.ProvisioningState != "Succeeded" {
			t.Fatalf("image after blob delete: %v %v", err, got.Properties)
		}
		// still usable as a source: the version copies the image's content
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		v := s.version(t, rg, "g", "d", "1.0.0", *img.ID)
		if !s.real {
			fp, _ := s.env.Server.Fingerprint(*v.ID)
			if fp.MD5 != md5hex(first) {
				t.Fatalf("version fingerprint %+v, want the original content", fp)
			}
			if err := s.createVM(ctx, s.vms, rg, "vm", s.loc, *img.ID); err != nil {
				t.Fatalf("VM from the image after its blob was deleted: %v", err)
			}
		}
	})

	t.Run("VersionKeepsContentWhenSourceChanges", func(t *testing.T) {
		s.emuOnly(t, "inspects the recorded content fingerprint")
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		a, b := []byte("content A"), []byte("content B, newer")
		img := s.image(t, rg, "src", s.upload(t, s.name("a")+".vhd", a), "V1")
		v := s.version(t, rg, "g", "d", "1.0.0", *img.ID)
		p, err := s.images.BeginDelete(ctx, rg, "src", nil)
		deleteAndWait(t, p, err)
		img2 := s.image(t, rg, "src", s.upload(t, s.name("b")+".vhd", b), "V1")
		fv, _ := s.env.Server.Fingerprint(*v.ID)
		fi, _ := s.env.Server.Fingerprint(*img2.ID)
		if fv.MD5 != md5hex(a) || fi.MD5 != md5hex(b) {
			t.Fatalf("version %s (want %s), image %s (want %s)", fv.MD5, md5hex(a), fi.MD5, md5hex(b))
		}
	})

	t.Run("ReplicaPolicy", func(t *testing.T) {
		if s.loc2 == "" {
			t.Skip("needs a second location")
		}
		for _, policy := range []string{azemu.ReplicaPolicyStrict, azemu.ReplicaPolicyCurrent} {
			t.Run(policy, func(t *testing.T) {
				s.emuOnly(t, "the policy is an emulator setting; Azure follows one of them")
				if err := s.env.Server.SetReplicaPolicy(policy); err != nil {
					t.Fatal(err)
				}
				defer s.env.Server.SetReplicaPolicy(azemu.ReplicaPolicyCurrent)
				rg := s.rg(t)
				s.gallery(t, rg, "g")
				s.definition(t, rg, "g", "d", "V1")
				img := s.image(t, rg, "src", s.upload(t, s.name("r")+".vhd", []byte("replica")), "V1")
				s.version(t, rg, "g", "d", "1.0.0", *img.ID)
				p, err := s.images.BeginDelete(ctx, rg, "src", nil)
				deleteAndWait(t, p, err)
				upd := armcompute.GalleryImageVersionUpdate{Properties: &armcompute.GalleryImageVersionProperties{
					PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{
						{Name: to.Ptr(s.loc), RegionalReplicaCount: to.Ptr[int32](1)},
						{Name: to.Ptr(s.loc2), RegionalReplicaCount: to.Ptr[int32](1)},
					}},
					StorageProfile: &armcompute.GalleryImageVersionStorageProfile{},
				}}
				up, err := s.versions.BeginUpdate(ctx, rg, "g", "d", "1.0.0", upd, nil)
				if policy == azemu.ReplicaPolicyStrict {
					wantCode(t, err, 400, "InvalidParameter")
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				res, err := up.PollUntilDone(ctx, pollFast)
				if err != nil {
					t.Fatal(err)
				}
				if n := len(res.Properties.PublishingProfile.TargetRegions); n != 2 {
					t.Fatalf("%d target regions after update, want 2", n)
				}
				if err := s.createVM(ctx, s.vms, rg, "vm2", s.loc2, *res.ID); err != nil {
					t.Fatalf("VM in the added region: %v", err)
				}
			})
		}
	})

	t.Run("ReplicationStatusAdvances", func(t *testing.T) {
		if s.loc2 == "" {
			t.Skip("needs a second location")
		}
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		img := s.image(t, rg, "src", s.upload(t, s.name("rs")+".vhd", []byte("replication")), "V1")
		p, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "d", "1.0.0", versionBody(s.loc, *img.ID, s.loc2), nil)
		if err != nil {
			t.Fatal(err)
		}
		expand := &armcompute.GalleryImageVersionsClientGetOptions{Expand: to.Ptr(armcompute.ReplicationStatusTypesReplicationStatus)}
		sawProgress := false
		last := map[string]int32{}
		for !p.Done() {
			g, err := s.versions.Get(ctx, rg, "g", "d", "1.0.0", expand)
			if err != nil {
				t.Fatal(err)
			}
			rs := g.Properties.ReplicationStatus
			if rs == nil || len(rs.Summary) != 2 {
				t.Fatalf("replication status %+v", rs)
			}
			for _, r := range rs.Summary {
				if *r.Progress < last[*r.Region] {
					t.Fatalf("progress went back in %s", *r.Region)
				}
				last[*r.Region] = *r.Progress
				if *r.Progress > 0 && *r.Progress < 100 {
					sawProgress = true
				}
			}
			if *rs.AggregatedState != armcompute.AggregatedReplicationStateCompleted && *g.Properties.ProvisioningState == armcompute.GalleryProvisioningStateSucceeded {
				t.Fatal("version Succeeded before replication completed")
			}
			if _, err := p.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		g, err := s.versions.Get(ctx, rg, "g", "d", "1.0.0", expand)
		if err != nil {
			t.Fatal(err)
		}
		if *g.Properties.ReplicationStatus.AggregatedState != armcompute.AggregatedReplicationStateCompleted || *g.Properties.ProvisioningState != armcompute.GalleryProvisioningStateSucceeded {
			t.Fatalf("after the LRO: %s / %s", *g.Properties.ReplicationStatus.AggregatedState, *g.Properties.ProvisioningState)
		}
		if !sawProgress && !s.real {
			t.Error("never saw a region part-way through replication")
		}
	})

	t.Run("BlockDeletionBeforeEndOfLife", func(t *testing.T) {
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		img := s.image(t, rg, "src", s.upload(t, s.name("eol")+".vhd", []byte("eol")), "V1")
		for _, tc := range []struct {
			v       string
			eol     time.Time
			blocked bool
		}{
			{"1.0.0", time.Now().Add(30 * 24 * time.Hour), true},
			{"1.0.1", time.Now().Add(-time.Hour), false},
		} {
			b := versionBody(s.loc, *img.ID)
			b.Properties.PublishingProfile.EndOfLifeDate = to.Ptr(tc.eol.UTC().Truncate(time.Second))
			b.Properties.SafetyProfile = &armcompute.GalleryImageVersionSafetyProfile{BlockDeletionBeforeEndOfLife: to.Ptr(true)}
			p, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "d", tc.v, b, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
				t.Fatal(err)
			}
			dp, err := s.versions.BeginDelete(ctx, rg, "g", "d", tc.v, nil)
			if tc.blocked {
				wantCode(t, err, 409, "OperationNotAllowed")
			} else {
				deleteAndWait(t, dp, err)
			}
		}
	})

	t.Run("ImageInUseCannotBeDeleted", func(t *testing.T) {
		s.emuOnly(t, "a real VM needs a network interface")
		rg := s.rg(t)
		img := s.image(t, rg, "used", s.upload(t, s.name("u")+".vhd", []byte("in use")), "V1")
		if err := s.createVM(ctx, s.vms, rg, "vm", s.loc, *img.ID); err != nil {
			t.Fatal(err)
		}
		_, err := s.images.BeginDelete(ctx, rg, "used", nil)
		re := wantCode(t, err, 409, "OperationNotAllowed")
		if !strings.Contains(re.Error(), "virtualMachines/vm") {
			t.Fatalf("error does not name the VM: %v", re)
		}
		p, err := s.vms.BeginDelete(ctx, rg, "vm", nil)
		deleteAndWait(t, p, err)
		p2, err := s.images.BeginDelete(ctx, rg, "used", nil)
		deleteAndWait(t, p2, err)
	})

	t.Run("WhereImagesCanBeUsed", func(t *testing.T) {
		s.emuOnly(t, "a real VM needs a network interface")
		rg := s.rg(t)
		img := s.image(t, rg, "img", s.upload(t, s.name("w")+".vhd", []byte("where")), "V1")
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		v := s.version(t, rg, "g", "d", "1.0.0", *img.ID)
		if _, err := s.otherRGs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr(s.loc)}, nil); err != nil {
			t.Fatal(err)
		}
		defID := strings.TrimSuffix(*v.ID, "/versions/1.0.0")
		cases := []struct {
			name       string
			client     *armcompute.VirtualMachinesClient
			loc, image string
			status     int
			code       string
		}{
			{"managed image, own region", s.vms, s.loc, *img.ID, 0, ""},
			{"managed image, other region", s.vms, s.loc2, *img.ID, 400, "InvalidParameter"},
			{"managed image, other subscription", s.other, s.loc, *img.ID, 400, "InvalidParameter"},
			{"version, replicated region", s.vms, s.loc, *v.ID, 0, ""},
			{"definition (latest), replicated region", s.vms, s.loc, defID, 0, ""},
			{"version, region not replicated", s.vms, s.loc2, *v.ID, 404, "GalleryImageNotFound"},
			{"version, other subscription without role", s.other, s.loc, *v.ID, 403, "LinkedAuthorizationFailed"},
		}
		for i, tc := range cases {
			err := s.createVM(ctx, tc.client, rg, fmt.Sprintf("vm%d", i), tc.loc, tc.image)
			if tc.status == 0 {
				if err != nil {
					t.Errorf("%s: %v", tc.name, err)
				}
				continue
			}
			if err == nil {
				t.Errorf("%s: accepted", tc.name)
				continue
			}
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != tc.status || re.ErrorCode != tc.code {
				t.Errorf("%s: got %v, want %d %s", tc.name, err, tc.status, tc.code)
			}
		}
		// a role assignment on the gallery lets the other subscription use the version
		galleryID := strings.TrimSuffix(defID, "/images/d")
		readerRole := "/subscriptions/" + s.sub + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
		if _, err := s.roles.Create(ctx, galleryID, "3f2c6a1e-7b8d-4c9e-a0f1-2b3c4d5e6f70", armauthorization.RoleAssignmentCreateParameters{
			Properties: &armauthorization.RoleAssignmentProperties{PrincipalID: to.Ptr(s.principal), RoleDefinitionID: to.Ptr(readerRole)},
		}, nil); err != nil {
			t.Fatal(err)
		}
		// the assignment takes effect only once it has propagated (rbac.go):
		// LinkedAuthorizationFailed until then
		granted := time.Now()
		for attempt := 0; ; attempt++ {
			err := s.createVM(ctx, s.other, rg, "shared", s.loc, *v.ID)
			if err == nil {
				if attempt == 0 && !s.real {
					t.Fatal("the role assignment took effect at once; it must propagate first")
				}
				break
			}
			wantCode(t, err, 403, "LinkedAuthorizationFailed")
			if time.Since(granted) > s.propagation() {
				t.Fatalf("VM in the other subscription %s after the role assignment: %v", time.Since(granted), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
		list := s.roles.NewListForScopePager(galleryID, nil)
		n := 0
		for list.More() {
			pg, err := list.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			n += len(pg.Value)
		}
		if n != 1 {
			t.Fatalf("%d role assignments on the gallery, want 1", n)
		}
		// scale sets record their image too
		vp, err := s.vmss.BeginCreateOrUpdate(ctx, rg, "ss", armcompute.VirtualMachineScaleSet{
			Location: to.Ptr(s.loc),
			Properties: &armcompute.VirtualMachineScaleSetProperties{VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{ID: v.ID}},
			}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vp.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		ssl := s.vmss.NewListPager(rg, nil)
		pg, err := ssl.NextPage(ctx)
		if err != nil || len(pg.Value) != 1 || *pg.Value[0].Properties.VirtualMachineProfile.StorageProfile.ImageReference.ID != *v.ID {
			t.Fatalf("scale set list: %v %+v", err, pg.Value)
		}
	})

	t.Run("LatestSkipsExcludedVersions", func(t *testing.T) {
		s.emuOnly(t, "a real VM needs a network interface")
		rg := s.rg(t)
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		img := s.image(t, rg, "img", s.upload(t, s.name("x")+".vhd", []byte("latest")), "V1")
		s.version(t, rg, "g", "d", "1.0.0", *img.ID)
		b := versionBody(s.loc, *img.ID)
		b.Properties.PublishingProfile.ExcludeFromLatest = to.Ptr(true)
		p, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "d", "2.0.0", b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		defID := "/subscriptions/" + s.sub + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/galleries/g/images/d"
		vp, err := s.vms.BeginCreateOrUpdate(ctx, rg, "vm", s.vm(rg, "vm", s.loc, defID), nil)
		if err != nil {
			t.Fatal(err)
		}
		vm, err := vp.PollUntilDone(ctx, pollFast)
		if err != nil {
			t.Fatal(err)
		}
		if got := vm.Properties.StorageProfile.ImageReference.ExactVersion; got == nil || *got != "1.0.0" {
			t.Fatalf("latest resolved to %v, want 1.0.0 (2.0.0 is excluded from latest)", got)
		}
	})

	t.Run("DiskDirectUpload", func(t *testing.T) {
		rg := s.rg(t)
		bad := armcompute.Disk{Location: to.Ptr(s.loc), Properties: &armcompute.DiskProperties{
			CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionUpload), UploadSizeBytes: to.Ptr[int64](20<<20 + 1000)},
		}}
		_, err := s.disks.BeginCreateOrUpdate(ctx, rg, "bad", bad, nil)
		wantCode(t, err, 400, "InvalidParameter")

		size := int64(20<<20 + 512)
		var raw *http.Response
		p, err := s.disks.BeginCreateOrUpdate(runtime.WithCaptureResponse(ctx, &raw), rg, "up", armcompute.Disk{
			Location: to.Ptr(s.loc),
			Properties: &armcompute.DiskProperties{
				OSType:           to.Ptr(armcompute.OperatingSystemTypesLinux),
				HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
				CreationData:     &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionUpload), UploadSizeBytes: to.Ptr(size)},
			},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if raw.StatusCode != http.StatusAccepted && raw.StatusCode != http.StatusOK {
			t.Fatalf("disk PUT answered %d, want 200 or 202", raw.StatusCode)
		}
		d, err := p.PollUntilDone(ctx, pollFast)
		if err != nil {
			t.Fatal(err)
		}
		if *d.Properties.DiskState != armcompute.DiskStateReadyToUpload {
			t.Fatalf("disk state %s, want ReadyToUpload", *d.Properties.DiskState)
		}
		gp, err := s.disks.BeginGrantAccess(ctx, rg, "up", armcompute.GrantAccessData{Access: to.Ptr(armcompute.AccessLevelWrite), DurationInSeconds: to.Ptr[int32](3600)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		ga, err := gp.PollUntilDone(ctx, pollFast)
		if err != nil {
			t.Fatal(err)
		}
		if ga.AccessSAS == nil || !strings.Contains(*ga.AccessSAS, "sig=") {
			t.Fatalf("accessSAS %v", ga.AccessSAS)
		}
		d2, _ := s.disks.Get(ctx, rg, "up", nil)
		if *d2.Properties.DiskState != armcompute.DiskStateActiveUpload {
			t.Fatalf("disk state %s during upload, want ActiveUpload", *d2.Properties.DiskState)
		}
		// upload through the SAS with the page blob client
		pb, err := pageblob.NewClientWithNoCredential(*ga.AccessSAS, nil)
		if err != nil {
			t.Fatal(err)
		}
		content := bytes.Repeat([]byte("imgpipe!"), 1<<17) // 1 MiB
		if _, err := pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(content)), blob.HTTPRange{Offset: 0, Count: int64(len(content))}, nil); err != nil {
			t.Fatalf("upload through SAS: %v", err)
		}
		props, err := pb.GetProperties(ctx, nil)
		if err != nil || *props.ContentLength != size {
			t.Fatalf("page blob size %v (%v), want %d", props.ContentLength, err, size)
		}
		if _, err := s.disks.BeginDelete(ctx, rg, "up", nil); err == nil {
			t.Fatal("deleting a disk in ActiveUpload was accepted")
		}
		ep, err := s.disks.BeginRevokeAccess(ctx, rg, "up", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ep.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		d3, _ := s.disks.Get(ctx, rg, "up", nil)
		if *d3.Properties.DiskState != armcompute.DiskStateUnattached {
			t.Fatalf("disk state %s after endGetAccess, want Unattached", *d3.Properties.DiskState)
		}
		// the uploaded disk is a version source; its generation must match
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d2", "V2")
		v := s.version(t, rg, "g", "d2", "1.0.0", *d3.ID)
		if !s.real {
			full := append(append([]byte(nil), content...), make([]byte, size-int64(len(content)))...)
			fp, _ := s.env.Server.Fingerprint(*v.ID)
			if fp.MD5 != md5hex(full) || fp.Size != size {
				t.Fatalf("version from disk fingerprint %+v, want MD5 %s size %d", fp, md5hex(full), size)
			}
		}
	})

	t.Run("Faults", func(t *testing.T) {
		s.emuOnly(t, "fault injection")
		rg := s.rg(t)
		src := s.upload(t, s.name("f")+".vhd", []byte("faulty"))
		s.env.Server.SetFaults(azemu.Faults{Seed: 7, Throttle: 0.15, ServerError: 0.1, Drop: 0.05})
		defer s.env.Server.SetFaults(azemu.Faults{})
		// the SDK's retry policy must converge through throttling, 500s and drops
		s.gallery(t, rg, "g")
		s.definition(t, rg, "g", "d", "V1")
		img := s.image(t, rg, "img", src, "V1")
		s.version(t, rg, "g", "d", "1.0.0", *img.ID)
		pager := s.versions.NewListByGalleryImagePager(rg, "g", "d", nil)
		for pager.More() {
			if _, err := pager.NextPage(ctx); err != nil {
				t.Fatalf("list under faults: %v", err)
			}
		}
		// an LRO that fails midway surfaces as the poller's error
		s.env.Server.SetFaults(azemu.Faults{Seed: 1, LROFailure: 1})
		p, err := s.galleries.BeginCreateOrUpdate(ctx, rg, "failing", armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.PollUntilDone(ctx, pollFast)
		// the SDK reports the failed status body (a 200) as the error
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != "InternalOperationError" {
			t.Fatalf("failed LRO: %v", err)
		}
		g, err := s.galleries.Get(ctx, rg, "failing", nil)
		if err != nil || *g.Properties.ProvisioningState != armcompute.GalleryProvisioningStateFailed {
			t.Fatalf("after a failed LRO: %v %v", err, g.Properties)
		}
		s.env.Server.SetFaults(azemu.Faults{})
		s.gallery(t, rg, "failing") // a retried PUT repairs it
	})

	t.Run("DropClosesTheConnection", func(t *testing.T) {
		s.emuOnly(t, "fault injection")
		tok := s.env.Token(t)
		s.env.Server.SetFaults(azemu.Faults{Seed: 3, Drop: 1})
		defer s.env.Server.SetFaults(azemu.Faults{})
		req, _ := http.NewRequest(http.MethodGet, s.env.Server.URL()+"/subscriptions/"+s.sub+"/resourcegroups?api-version=2021-04-01", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := s.env.HTTPClient().Do(req)
		if err == nil {
			resp.Body.Close()
			t.Fatalf("dropped request answered %d", resp.StatusCode)
		}
	})

	t.Run("FaultsAreDeterministic", func(t *testing.T) {
		s.emuOnly(t, "fault injection")
		seq := func() []int {
			s.env.Server.SetFaults(azemu.Faults{Seed: 42, Throttle: 0.3, ServerError: 0.3})
			defer s.env.Server.SetFaults(azemu.Faults{})
			tok := s.env.Token(t)
			var out []int
			for i := 0; i < 20; i++ {
				req, _ := http.NewRequest(http.MethodGet, s.env.Server.URL()+"/subscriptions/"+s.sub+"/resourcegroups?api-version=2021-04-01", nil)
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := s.env.HTTPClient().Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				out = append(out, resp.StatusCode)
			}
			return out
		}
		a, b := seq(), seq()
		if fmt.Sprint(a) != fmt.Sprint(b) {
			t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
		}
		if !strings.Contains(fmt.Sprint(a), "429") || !strings.Contains(fmt.Sprint(a), "500") || !strings.Contains(fmt.Sprint(a), "200") {
			t.Fatalf("fault mix %v lacks 429, 500 or 200", a)
		}
	})
}
