package azemu_test

// TestConformanceRules: one subtest per rule azemu enforces because Azure
// does (each rule names its source where azemu implements it). Like
// TestConformance it runs against azemu by default and against a real
// subscription with the IMGPIPE_TEST_AZURE_* variables; rules that need a
// second identity also need IMGPIPE_TEST_AZURE_CLIENT2_ID,
// IMGPIPE_TEST_AZURE_CLIENT2_SECRET and IMGPIPE_TEST_AZURE_PRINCIPAL2_ID
// (an identity with Contributor on the test resource groups and no role on
// storage accounts), and skip without them.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
)

// The second identity of the emulated directory (azemu.Options.ExtraClients).
const (
	client2ID     = "0e1a7c3d-0000-4000-8000-00000000c222"
	client2Secret = "azemu-second-secret"
	principal2ID  = "5b0c2a91-0000-4000-8000-0000000000b2"
)

const storageContributorRole = "17d1049b-9a84-46fb-8f53-869881c3d3ab"

// second returns clients acting as the second identity.
func (s *suite) second(t *testing.T) (*armcompute.GalleryImageVersionsClient, *armstorage.AccountsClient, string) {
	t.Helper()
	var cred azcore.TokenCredential
	principal := principal2ID
	if s.real {
		if envv("CLIENT2_ID") == "" || envv("CLIENT2_SECRET") == "" || envv("PRINCIPAL2_ID") == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_CLIENT2_ID, _CLIENT2_SECRET and _PRINCIPAL2_ID")
		}
		c, err := azidentity.NewClientSecretCredential(envv("TENANT_ID"), envv("CLIENT2_ID"), envv("CLIENT2_SECRET"), nil)
		if err != nil {
			t.Fatal(err)
		}
		cred, principal = c, envv("PRINCIPAL2_ID")
	} else {
		c, err := azidentity.NewClientSecretCredential(s.env.Server.Options().TenantID, client2ID, client2Secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: s.opts.ClientOptions, DisableInstanceDiscovery: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		cred = c
	}
	v, err := armcompute.NewGalleryImageVersionsClient(s.sub, cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	a, err := armstorage.NewAccountsClient(s.sub, cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	return v, a, principal
}

func (s *suite) accounts(t *testing.T, sub string) *armstorage.AccountsClient {
	t.Helper()
	c, err := armstorage.NewAccountsClient(sub, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// account creates a storage account in sub/rg/loc and returns its id and a
// function uploading a page blob into it (returning the blob's URL).
func (s *suite) account(t *testing.T, sub, rg, loc string) (string, func(name string, content []byte) string) {
	t.Helper()
	name := strings.ReplaceAll(s.name("imgpipeconf"), "-", "")
	if len(name) > 24 {
		name = name[len(name)-24:]
	}
	ac := s.accounts(t, sub)
	p, err := ac.BeginCreate(s.ctx, rg, name, armstorage.AccountCreateParameters{
		Kind: to.Ptr(armstorage.KindStorageV2), Location: to.Ptr(loc), SKU: &armstorage.SKU{Name: to.Ptr(armstorage.SKUNameStandardLRS)},
	}, nil)
	if err != nil {
		t.Fatalf("create storage account: %v", err)
	}
	acct, err := p.PollUntilDone(s.ctx, pollFast)
	if err != nil {
		t.Fatalf("create storage account: %v", err)
	}
	return *acct.ID, func(blobName string, content []byte) string {
		t.Helper()
		if !s.real {
			// the emulator serves NAME.blob.core.windows.net from its one
			// blob service: the data goes to Azurite, the URL names the account
			u := s.upload(t, blobName, content)
			return "https://" + name + ".blob.core.windows.net" + strings.TrimPrefix(u, s.blobBase)
		}
		keys, err := ac.ListKeys(s.ctx, rg, name, nil)
		if err != nil || len(keys.Keys) == 0 {
			t.Fatalf("list keys: %v", err)
		}
		cred, err := blob.NewSharedKeyCredential(name, *keys.Keys[0].Value)
		if err != nil {
			t.Fatal(err)
		}
		u := "https://" + name + ".blob.core.windows.net/vhds/" + blobName
		pb, err := pageblob.NewClientWithSharedKeyCredential(u, cred, nil)
		if err != nil {
			t.Fatal(err)
		}
		data := append([]byte(nil), content...)
		if r := len(data) % 512; r != 0 {
			data = append(data, make([]byte, 512-r)...)
		}
		if _, err := pb.Create(s.ctx, int64(len(data)), nil); err != nil {
			t.Fatalf("create page blob: %v", err)
		}
		if _, err := pb.UploadPages(s.ctx, streaming.NopCloser(bytes.NewReader(data)), blob.HTTPRange{Offset: 0, Count: int64(len(data))}, nil); err != nil {
			t.Fatal(err)
		}
		return u
	}
}

func (s *suite) rgIn(t *testing.T, rgs *armresources.ResourceGroupsClient, loc string) string {
	t.Helper()
	n := s.name("imgpipe-conf-")
	if _, err := rgs.CreateOrUpdate(s.ctx, n, armresources.ResourceGroup{Location: to.Ptr(loc)}, nil); err != nil {
		t.Fatalf("create resource group: %v", err)
	}
	t.Cleanup(func() {
		if p, err := rgs.BeginDelete(s.ctx, n, nil); err == nil {
			_, _ = p.PollUntilDone(s.ctx, pollFast)
		}
	})
	return n
}

func imageFromBlob(loc, u, gen string) armcompute.Image {
	return armcompute.Image{Location: to.Ptr(loc), Properties: &armcompute.ImageProperties{
		HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypes(gen)),
		StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), BlobURI: to.Ptr(u),
		}},
	}}
}

func vhdVersion(loc, u, accountID string) armcompute.GalleryImageVersion {
	b := versionBody(loc, "")
	b.Properties.StorageProfile = &armcompute.GalleryImageVersionStorageProfile{OSDiskImage: &armcompute.GalleryOSDiskImage{
		Source: &armcompute.GalleryDiskImageSource{URI: to.Ptr(u)},
	}}
	if accountID != "" {
		b.Properties.StorageProfile.OSDiskImage.Source.StorageAccountID = to.Ptr(accountID)
	}
	return b
}

func secDef(loc, gen, sku, security string) armcompute.GalleryImage {
	d := defBody(loc, gen, sku)
	if security != "" {
		d.Properties.Features = []*armcompute.GalleryImageFeature{{Name: to.Ptr("SecurityType"), Value: to.Ptr(security)}}
	}
	return d
}

// uploadDisk creates a disk for direct upload (Linux, gen), uploads content
// through a write SAS and ends the upload.
func (s *suite) uploadDisk(t *testing.T, rg, name, gen string, content []byte) *armcompute.Disk {
	t.Helper()
	size := int64(20<<20 + 512)
	p, err := s.disks.BeginCreateOrUpdate(s.ctx, rg, name, armcompute.Disk{Location: to.Ptr(s.loc), Properties: &armcompute.DiskProperties{
		OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), HyperVGeneration: to.Ptr(armcompute.HyperVGeneration(gen)),
		CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionUpload), UploadSizeBytes: to.Ptr(size)},
	}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.PollUntilDone(s.ctx, pollFast); err != nil {
		t.Fatal(err)
	}
	gp, err := s.disks.BeginGrantAccess(s.ctx, rg, name, armcompute.GrantAccessData{Access: to.Ptr(armcompute.AccessLevelWrite), DurationInSeconds: to.Ptr[int32](3600)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ga, err := gp.PollUntilDone(s.ctx, pollFast)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := pageblob.NewClientWithNoCredential(*ga.AccessSAS, nil)
	if err != nil {
		t.Fatal(err)
	}
	data := append([]byte(nil), content...)
	if r := len(data) % 512; r != 0 {
		data = append(data, make([]byte, 512-r)...)
	}
	if _, err := pb.UploadPages(s.ctx, streaming.NopCloser(bytes.NewReader(data)), blob.HTTPRange{Offset: 0, Count: int64(len(data))}, nil); err != nil {
		t.Fatal(err)
	}
	ep, err := s.disks.BeginRevokeAccess(s.ctx, rg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ep.PollUntilDone(s.ctx, pollFast); err != nil {
		t.Fatal(err)
	}
	d, err := s.disks.Get(s.ctx, rg, name, nil)
	if err != nil {
		t.Fatal(err)
	}
	return &d.Disk
}

func TestConformanceRules(t *testing.T) {
	s := newSuite(t)
	ctx := s.ctx
	cf, err := armcompute.NewClientFactory(s.sub, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("StorageAccountIsAResource", func(t *testing.T) {
		if s.storageID == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID")
		}
		parts := strings.Split(s.storageID, "/")
		rg, name := parts[4], parts[8]
		ac := s.accounts(t, s.sub)
		a, err := ac.GetProperties(ctx, rg, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if a.Location == nil || *a.Location == "" || a.Properties == nil || a.Properties.PrimaryEndpoints == nil || a.Properties.PrimaryEndpoints.Blob == nil {
			t.Fatalf("storage account without location or blob endpoint: %+v", a.Account)
		}
		if _, err := ac.ListKeys(ctx, rg, name, nil); err != nil {
			t.Fatalf("list keys as the account's own subscription's identity: %v", err)
		}
		for _, pager := range []*runtimePager{newPager(ac.NewListByResourceGroupPager(rg, nil)), newPager(ac.NewListPager(nil))} {
			found := false
			for _, id := range pager.ids(t) {
				found = found || strings.EqualFold(id, s.storageID)
			}
			if !found {
				t.Errorf("%s not listed", s.storageID)
			}
		}
	})

	t.Run("ManagedImageBlobInAnotherRegionRefused", func(t *testing.T) {
		if s.loc2 == "" {
			t.Skip("needs a second location")
		}
		rg := s.rg(t)
		_, upload := s.account(t, s.sub, rg, s.loc2)
		u := upload(s.name("far")+".vhd", []byte("a blob in another region"))
		_, err := s.images.BeginCreateOrUpdate(ctx, rg, "far", imageFromBlob(s.loc, u, "V1"), nil)
		re := wantCode(t, err, 400, "BadRequest")
		if !strings.Contains(re.Error(), "same region") {
			t.Fatalf("the refusal does not say the region: %v", re)
		}
	})

	t.Run("ManagedImageBlobInAnotherSubscriptionRefused", func(t *testing.T) {
		if s.sub2 == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_SUBSCRIPTION_ID_2")
		}
		rg := s.rg(t)
		rg2 := s.rgIn(t, s.otherRGs, s.loc)
		_, upload := s.account(t, s.sub2, rg2, s.loc)
		u := upload(s.name("sub2")+".vhd", []byte("a blob in another subscription"))
		_, err := s.images.BeginCreateOrUpdate(ctx, rg, "other", imageFromBlob(s.loc, u, "V1"), nil)
		re := wantCode(t, err, 400, "BadRequest")
		if !strings.Contains(re.Error(), "subscription") {
			t.Fatalf("the refusal does not say the subscription: %v", re)
		}
	})

	t.Run("VersionFromVHDNeedsItsStorageAccountID", func(t *testing.T) {
		if s.storageID == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID")
		}
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		s.definition(t, rg, g, "d", "V1")
		u := s.upload(t, s.name("vhd")+".vhd", []byte("vhd source"))
		_, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", vhdVersion(s.loc, u, ""), nil)
		wantCode(t, err, 400, "InvalidParameter")
		// an account that does not hold the blob
		otherID, _ := s.account(t, s.sub, rg, s.loc)
		_, err = s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", vhdVersion(s.loc, u, otherID), nil)
		wantCode(t, err, 400, "InvalidParameter")
		p, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", vhdVersion(s.loc, u, s.storageID), nil)
		deleteAndWait(t, p, err)
	})

	t.Run("VersionFromVHDNeedsListKeysPermission", func(t *testing.T) {
		if s.storageID == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID")
		}
		versions2, accounts2, _ := s.second(t)
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		s.definition(t, rg, g, "d", "V1")
		u := s.upload(t, s.name("keys")+".vhd", []byte("listKeys"))
		_, err := versions2.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", vhdVersion(s.loc, u, s.storageID), nil)
		re := wantCode(t, err, 403, "LinkedAuthorizationFailed")
		if !strings.Contains(re.Error(), "listKeys") {
			t.Fatalf("the refusal does not name listKeys: %v", re)
		}
		parts := strings.Split(s.storageID, "/")
		_, err = accounts2.ListKeys(ctx, parts[4], parts[8], nil)
		wantCode(t, err, 403, "AuthorizationFailed")
	})

	t.Run("RoleAssignmentTakesEffectAfterPropagation", func(t *testing.T) {
		if s.storageID == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID")
		}
		_, accounts2, principal2 := s.second(t)
		rg := s.rg(t)
		acctID, _ := s.account(t, s.sub, rg, s.loc)
		parts := strings.Split(acctID, "/")
		role := "/subscriptions/" + s.sub + "/providers/Microsoft.Authorization/roleDefinitions/" + storageContributorRole
		name := fmt.Sprintf("%08x-7b8d-4c9e-a0f1-2b3c4d5e6f71", time.Now().UnixNano()&0xffffffff)
		if _, err := s.roles.Create(ctx, acctID, name, armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
			PrincipalID: to.Ptr(principal2), RoleDefinitionID: to.Ptr(role), PrincipalType: to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
		}}, nil); err != nil {
			t.Fatal(err)
		}
		granted := time.Now()
		for attempt := 0; ; attempt++ {
			_, err := accounts2.ListKeys(ctx, parts[4], parts[8], nil)
			if err == nil {
				if attempt == 0 && !s.real {
					t.Fatal("the role assignment took effect at once; Azure propagates it first")
				}
				break
			}
			wantCode(t, err, 403, "AuthorizationFailed")
			if time.Since(granted) > s.propagation() {
				t.Fatalf("still refused %s after the role assignment: %v", time.Since(granted), err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	})

	t.Run("NewPrincipalNotFoundUntilReplicated", func(t *testing.T) {
		s.emuOnly(t, "needs a principal created a moment ago in the directory")
		rg := s.rg(t)
		p := "aaaaaaaa-bbbb-4ccc-8ddd-" + fmt.Sprintf("%012x", time.Now().UnixNano()&0xffffffffffff)
		s.env.Server.AddPrincipal(p)
		scope := "/subscriptions/" + s.sub + "/resourceGroups/" + rg
		reader := "/subscriptions/" + s.sub + "/providers/Microsoft.Authorization/roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"
		_, err := s.roles.Create(ctx, scope, "1f2c6a1e-7b8d-4c9e-a0f1-2b3c4d5e6f72", armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
			PrincipalID: to.Ptr(p), RoleDefinitionID: to.Ptr(reader),
		}}, nil)
		re := wantCode(t, err, 400, "PrincipalNotFound")
		if !strings.Contains(re.Error(), "principalType") {
			t.Fatalf("the answer does not say what to do: %v", re)
		}
		// naming principalType avoids the replication delay (documented)
		if _, err := s.roles.Create(ctx, scope, "1f2c6a1e-7b8d-4c9e-a0f1-2b3c4d5e6f72", armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
			PrincipalID: to.Ptr(p), RoleDefinitionID: to.Ptr(reader), PrincipalType: to.Ptr(armauthorization.PrincipalTypeServicePrincipal),
		}}, nil); err != nil {
			t.Fatalf("with principalType: %v", err)
		}
	})

	t.Run("DefinitionNameRules", func(t *testing.T) {
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		for _, bad := range []string{"bad-", "bad!x", "bad.", "bad_", "-bad", "_bad", ".bad", strings.Repeat("a", 81)} {
			_, err := s.defs.BeginCreateOrUpdate(ctx, rg, g, bad, defBody(s.loc, "V2", "sku"+s.name("")), nil)
			if err == nil {
				t.Errorf("definition name %q accepted", bad)
				continue
			}
			wantCode(t, err, 400, "InvalidParameter")
		}
		for i, good := range []string{"a", "web-1.0_x", strings.Repeat("b", 80)} {
			p, err := s.defs.BeginCreateOrUpdate(ctx, rg, g, good, defBody(s.loc, "V2", fmt.Sprintf("good%d", i)), nil)
			if err != nil {
				t.Fatalf("definition name %q refused: %v", good, err)
			}
			if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
				t.Fatal(err)
			}
		}
	})

	t.Run("GalleryNameRules", func(t *testing.T) {
		rg := s.rg(t)
		for _, bad := range []string{"g.", "g_", ".g", "_g", "g-h", "g h", strings.Repeat("g", 81)} {
			_, err := s.galleries.BeginCreateOrUpdate(ctx, rg, bad, armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
			if err == nil {
				t.Errorf("gallery name %q accepted", bad)
				continue
			}
			var re *azcore.ResponseError
			if !errors.As(err, &re) || re.StatusCode != 400 {
				t.Errorf("gallery name %q: %v, want 400", bad, err)
			}
		}
		s.gallery(t, rg, s.name("g.h_i"))
	})

	t.Run("GalleryNameUniquePerSubscription", func(t *testing.T) {
		rg1, rg2 := s.rg(t), s.rg(t)
		n := s.name("uniq")
		s.gallery(t, rg1, n)
		_, err := s.galleries.BeginCreateOrUpdate(ctx, rg2, n, armcompute.Gallery{Location: to.Ptr(s.loc)}, nil)
		re := wantCode(t, err, 409, "Conflict")
		if !strings.Contains(re.Error(), "not unique within the subscription") {
			t.Fatalf("message: %v", re)
		}
	})

	t.Run("DefinitionIdentifierUniquePerGallery", func(t *testing.T) {
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		s.definition(t, rg, g, "first", "V2")
		_, err := s.defs.BeginCreateOrUpdate(ctx, rg, g, "second", defBody(s.loc, "V2", "first"), nil)
		re := wantCode(t, err, 409, "Conflict")
		if !strings.Contains(re.Error(), "publisher, offer, sku") {
			t.Fatalf("message: %v", re)
		}
	})

	t.Run("SecurityTypeNeedsGeneration2", func(t *testing.T) {
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		for i, st := range []string{"TrustedLaunch", "ConfidentialVM", "TrustedLaunchSupported"} {
			_, err := s.defs.BeginCreateOrUpdate(ctx, rg, g, fmt.Sprintf("v1sec%d", i), secDef(s.loc, "V1", fmt.Sprintf("v1sec%d", i), st), nil)
			wantCode(t, err, 400, "InvalidParameter")
		}
		p, err := s.defs.BeginCreateOrUpdate(ctx, rg, g, "tl", secDef(s.loc, "V2", "tl", "TrustedLaunch"), nil)
		deleteAndWait(t, p, err)
	})

	t.Run("TrustedLaunchVersionNotFromManagedImage", func(t *testing.T) {
		if s.storageID == "" {
			t.Skip("needs IMGPIPE_TEST_AZURE_STORAGE_ACCOUNT_ID")
		}
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		p, err := s.defs.BeginCreateOrUpdate(ctx, rg, g, "tl", secDef(s.loc, "V2", "tl", "TrustedLaunch"), nil)
		deleteAndWait(t, p, err)
		u := s.upload(t, s.name("tl")+".vhd", []byte("trusted launch"))
		img := s.image(t, rg, "img", u, "V2")
		_, err = s.versions.BeginCreateOrUpdate(ctx, rg, g, "tl", "1.0.0", versionBody(s.loc, *img.ID), nil)
		wantCode(t, err, 400, "InvalidParameter")
		vp, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "tl", "1.0.0", vhdVersion(s.loc, u, s.storageID), nil)
		deleteAndWait(t, vp, err)
	})

	t.Run("DiskSecurityTypeNeedsGeneration2", func(t *testing.T) {
		rg := s.rg(t)
		body := func(gen string) armcompute.Disk {
			return armcompute.Disk{Location: to.Ptr(s.loc), Properties: &armcompute.DiskProperties{
				OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), HyperVGeneration: to.Ptr(armcompute.HyperVGeneration(gen)),
				SecurityProfile: &armcompute.DiskSecurityProfile{SecurityType: to.Ptr(armcompute.DiskSecurityTypesTrustedLaunch)},
				CreationData:    &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionUpload), UploadSizeBytes: to.Ptr[int64](20<<20 + 512)},
			}}
		}
		_, err := s.disks.BeginCreateOrUpdate(ctx, rg, "tlv1", body("V1"), nil)
		wantCode(t, err, 400, "InvalidParameter")
		p, err := s.disks.BeginCreateOrUpdate(ctx, rg, "tlv2", body("V2"), nil)
		if err != nil {
			t.Fatal(err)
		}
		d, err := p.PollUntilDone(ctx, pollFast)
		if err != nil {
			t.Fatal(err)
		}
		pr := d.Properties
		if pr.OSType == nil || pr.HyperVGeneration == nil || *pr.HyperVGeneration != armcompute.HyperVGenerationV2 || pr.SecurityProfile == nil || pr.SecurityProfile.SecurityType == nil {
			t.Fatalf("the disk lost its OS properties: %+v", pr)
		}
	})

	t.Run("RegionDropRefusedWithoutAllowDeletion", func(t *testing.T) {
		if s.loc2 == "" {
			t.Skip("needs a second location")
		}
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		s.definition(t, rg, g, "d", "V1")
		img := s.image(t, rg, "img", s.upload(t, s.name("drop")+".vhd", []byte("regions")), "V1")
		for _, allow := range []bool{false, true} {
			v := fmt.Sprintf("1.0.%d", map[bool]int{false: 0, true: 1}[allow])
			b := versionBody(s.loc, *img.ID, s.loc2)
			b.Properties.SafetyProfile = &armcompute.GalleryImageVersionSafetyProfile{AllowDeletionOfReplicatedLocations: to.Ptr(allow)}
			p, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", v, b, nil)
			deleteAndWait(t, p, err)
			upd := armcompute.GalleryImageVersionUpdate{Properties: &armcompute.GalleryImageVersionProperties{
				PublishingProfile: &armcompute.GalleryImageVersionPublishingProfile{TargetRegions: []*armcompute.TargetRegion{{Name: to.Ptr(s.loc), RegionalReplicaCount: to.Ptr[int32](1)}}},
				StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{},
			}}
			up, err := s.versions.BeginUpdate(ctx, rg, g, "d", v, upd, nil)
			if !allow {
				re := wantCode(t, err, 400, "InvalidParameter")
				if !strings.Contains(re.Error(), "allowDeletionOfReplicatedLocations") {
					t.Fatalf("message: %v", re)
				}
				got, err := s.versions.Get(ctx, rg, g, "d", v, nil)
				if err != nil || len(got.Properties.PublishingProfile.TargetRegions) != 2 {
					t.Fatalf("after the refused drop: %v %+v", err, got.Properties.PublishingProfile.TargetRegions)
				}
				continue
			}
			if err != nil {
				t.Fatalf("drop with allowDeletionOfReplicatedLocations = true: %v", err)
			}
			res, err := up.PollUntilDone(ctx, pollFast)
			if err != nil || len(res.Properties.PublishingProfile.TargetRegions) != 1 {
				t.Fatalf("after the drop: %v", err)
			}
		}
	})

	t.Run("WriteAccessRenewedWhileActiveUpload", func(t *testing.T) {
		rg := s.rg(t)
		p, err := s.disks.BeginCreateOrUpdate(ctx, rg, "up", armcompute.Disk{Location: to.Ptr(s.loc), Properties: &armcompute.DiskProperties{
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV2),
			CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionUpload), UploadSizeBytes: to.Ptr[int64](20<<20 + 512)},
		}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		grant := func() string {
			t.Helper()
			gp, err := s.disks.BeginGrantAccess(ctx, rg, "up", armcompute.GrantAccessData{Access: to.Ptr(armcompute.AccessLevelWrite), DurationInSeconds: to.Ptr[int32](600)}, nil)
			if err != nil {
				t.Fatalf("grant write access: %v", err)
			}
			ga, err := gp.PollUntilDone(ctx, pollFast)
			if err != nil {
				t.Fatalf("grant write access: %v", err)
			}
			return *ga.AccessSAS
		}
		first := grant()
		pb, _ := pageblob.NewClientWithNoCredential(first, nil)
		page := bytes.Repeat([]byte{0xab}, 512)
		if _, err := pb.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(page)), blob.HTTPRange{Offset: 0, Count: 512}, nil); err != nil {
			t.Fatal(err)
		}
		// again, while ActiveUpload: a new SAS for the same upload
		second := grant()
		pb2, _ := pageblob.NewClientWithNoCredential(second, nil)
		if _, err := pb2.UploadPages(ctx, streaming.NopCloser(bytes.NewReader(page)), blob.HTTPRange{Offset: 512, Count: 512}, nil); err != nil {
			t.Fatalf("upload through the renewed SAS: %v", err)
		}
		// both pages are in the one upload blob
		got, err := pb2.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: 0, Count: 1024}})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		_, _ = buf.ReadFrom(got.Body)
		got.Body.Close()
		if !bytes.Equal(buf.Bytes(), append(append([]byte(nil), page...), page...)) {
			t.Fatal("the page written through the first SAS is not in the blob the renewed SAS writes to")
		}
		props, err := pb2.GetProperties(ctx, nil)
		if err != nil || *props.ContentLength != 20<<20+512 {
			t.Fatalf("the renewed SAS reaches another blob: %v", err)
		}
		d, _ := s.disks.Get(ctx, rg, "up", nil)
		if *d.Properties.DiskState != armcompute.DiskStateActiveUpload {
			t.Fatalf("disk state %s, want ActiveUpload", *d.Properties.DiskState)
		}
		ep, err := s.disks.BeginRevokeAccess(ctx, rg, "up", nil)
		deleteAndWait(t, ep, err)
	})

	t.Run("VersionFromSnapshots", func(t *testing.T) {
		rg := s.rg(t)
		content := bytes.Repeat([]byte("snap"), 256)
		osDisk := s.uploadDisk(t, rg, "os", "V2", content)
		dataDisk := s.uploadDisk(t, rg, "data", "V2", []byte("data disk"))
		snaps := cf.NewSnapshotsClient()
		snap := func(name, src string) string {
			t.Helper()
			p, err := snaps.BeginCreateOrUpdate(ctx, rg, name, armcompute.Snapshot{Location: to.Ptr(s.loc), Properties: &armcompute.SnapshotProperties{
				CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionCopy), SourceResourceID: to.Ptr(src)},
			}}, nil)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			r, err := p.PollUntilDone(ctx, pollFast)
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			return *r.ID
		}
		osSnap, dataSnap := snap("os-snap", *osDisk.ID), snap("data-snap", *dataDisk.ID)
		g := s.name("g")
		s.gallery(t, rg, g)
		s.definition(t, rg, g, "d", "V2")
		b := versionBody(s.loc, "")
		b.Properties.StorageProfile = &armcompute.GalleryImageVersionStorageProfile{
			OSDiskImage:    &armcompute.GalleryOSDiskImage{Source: &armcompute.GalleryDiskImageSource{ID: to.Ptr(osSnap)}},
			DataDiskImages: []*armcompute.GalleryDataDiskImage{{Lun: to.Ptr[int32](0), Source: &armcompute.GalleryDiskImageSource{ID: to.Ptr(dataSnap)}}},
		}
		// a LUN twice is refused
		dup := b
		dupSP := *b.Properties.StorageProfile
		dupSP.DataDiskImages = append(dupSP.DataDiskImages, &armcompute.GalleryDataDiskImage{Lun: to.Ptr[int32](0), Source: &armcompute.GalleryDiskImageSource{ID: dataDisk.ID}})
		dupProps := *b.Properties
		dupProps.StorageProfile = &dupSP
		dup.Properties = &dupProps
		_, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", dup, nil)
		wantCode(t, err, 400, "InvalidParameter")
		p, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", b, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := p.PollUntilDone(ctx, pollFast)
		if err != nil {
			t.Fatal(err)
		}
		dd := v.Properties.StorageProfile.DataDiskImages
		if len(dd) != 1 || dd[0].Lun == nil || *dd[0].Lun != 0 {
			t.Fatalf("data disk images %+v", dd)
		}
		if !s.real {
			full := append(append([]byte(nil), content...), make([]byte, 20<<20+512-len(content))...)
			fp, _ := s.env.Server.Fingerprint(*v.ID)
			if fp.MD5 != md5hex(full) {
				t.Fatalf("version from the snapshot records %+v, want the disk's content", fp)
			}
		}
	})

	t.Run("GalleryShareAction", func(t *testing.T) {
		rg := s.rg(t)
		sharing := cf.NewGallerySharingProfileClient()
		other := "99999999-8888-4777-8666-555555555555"
		add := armcompute.SharingUpdate{OperationType: to.Ptr(armcompute.SharingUpdateOperationTypesAdd), Groups: []*armcompute.SharingProfileGroup{
			{Type: to.Ptr(armcompute.SharingProfileGroupTypesSubscriptions), IDs: []*string{to.Ptr(other)}},
		}}
		private := s.name("private")
		s.gallery(t, rg, private)
		_, err := sharing.BeginUpdate(ctx, rg, private, add, nil)
		wantCode(t, err, 400, "InvalidParameter")
		shared := s.name("groups")
		gp, err := s.galleries.BeginCreateOrUpdate(ctx, rg, shared, armcompute.Gallery{Location: to.Ptr(s.loc), Properties: &armcompute.GalleryProperties{
			SharingProfile: &armcompute.SharingProfile{Permissions: to.Ptr(armcompute.GallerySharingPermissionTypesGroups)},
		}}, nil)
		deleteAndWait(t, gp, err)
		p, err := sharing.BeginUpdate(ctx, rg, shared, add, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		g, err := s.galleries.Get(ctx, rg, shared, nil)
		if err != nil || g.Properties.SharingProfile == nil || len(g.Properties.SharingProfile.Groups) != 1 || *g.Properties.SharingProfile.Groups[0].IDs[0] != other {
			t.Fatalf("after share Add: %v %+v", err, g.Properties.SharingProfile)
		}
		rp, err := sharing.BeginUpdate(ctx, rg, shared, armcompute.SharingUpdate{OperationType: to.Ptr(armcompute.SharingUpdateOperationTypesReset)}, nil)
		deleteAndWait(t, rp, err)
		g, _ = s.galleries.Get(ctx, rg, shared, nil)
		if len(g.Properties.SharingProfile.Groups) != 0 {
			t.Fatalf("after share Reset: %+v", g.Properties.SharingProfile.Groups)
		}
	})

	t.Run("ListAtResourceGroupAndSubscriptionScope", func(t *testing.T) {
		rg := s.rg(t)
		n := s.name("listed")
		s.gallery(t, rg, n)
		img := s.image(t, rg, "listed", s.upload(t, s.name("l")+".vhd", []byte("listed")), "V1")
		want := map[string]bool{}
		for _, pager := range []*runtimePager{
			newPager(s.galleries.NewListByResourceGroupPager(rg, nil)), newPager(s.galleries.NewListPager(nil)),
			newPager(s.images.NewListByResourceGroupPager(rg, nil)), newPager(s.images.NewListPager(nil)),
		} {
			for _, id := range pager.ids(t) {
				want[strings.ToLower(id)] = true
			}
		}
		gid := "/subscriptions/" + s.sub + "/resourcegroups/" + strings.ToLower(rg) + "/providers/microsoft.compute/galleries/" + strings.ToLower(n)
		if !want[gid] || !want[strings.ToLower(*img.ID)] {
			t.Fatalf("gallery or image not listed at resource group and subscription scope: %v", want)
		}
	})

	t.Run("IDsWithoutLeadingSlash", func(t *testing.T) {
		rg := s.rg(t)
		g := s.name("g")
		s.gallery(t, rg, g)
		s.definition(t, rg, g, "d", "V1")
		img := s.image(t, rg, "img", s.upload(t, s.name("slash")+".vhd", []byte("no slash")), "V1")
		p, err := s.versions.BeginCreateOrUpdate(ctx, rg, g, "d", "1.0.0", versionBody(s.loc, strings.TrimPrefix(*img.ID, "/")), nil)
		if err != nil {
			t.Fatalf("source id without a leading slash: %v", err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("ResourceLocationCannotChange", func(t *testing.T) {
		if s.loc2 == "" {
			t.Skip("needs a second location")
		}
		rg := s.rg(t)
		n := s.name("loc")
		s.gallery(t, rg, n)
		_, err := s.galleries.BeginCreateOrUpdate(ctx, rg, n, armcompute.Gallery{Location: to.Ptr(s.loc2)}, nil)
		wantCode(t, err, 409, "InvalidResourceLocation")
	})
}

// runtimePager lists the resource ids of an SDK pager (pages with a Value
// slice of items with an ID).
type runtimePager struct {
	more func() bool
	next func() ([]string, error)
}

func newPager[T any](p *runtime.Pager[T]) *runtimePager {
	return &runtimePager{more: p.More, next: func() ([]string, error) {
		page, err := p.NextPage(context.Background())
		if err != nil {
			return nil, err
		}
		var ids []string
		vals := reflect.ValueOf(page).FieldByName("Value")
		for i := 0; vals.IsValid() && i < vals.Len(); i++ {
			if id := reflect.Indirect(vals.Index(i)).FieldByName("ID"); id.IsValid() && !id.IsNil() {
				ids = append(ids, id.Elem().String())
			}
		}
		return ids, nil
	}}
}

func (p *runtimePager) ids(t *testing.T) []string {
	t.Helper()
	var out []string
	for p.more() {
		ids, err := p.next()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, ids...)
	}
	return out
}
