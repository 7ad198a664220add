package azemu_test

// The contract test replays the Azure REST API examples recorded in
// AZURE_CONTRACT_DIR (default ../shared/azure-contract next to the
// repository; see its README for the format) against azemu: it creates the
// parents each request needs, sends the request, and checks that the status
// is one the example documents and that every documented header and body
// field is there with the documented JSON type.
//
//	AZURE_CONTRACT_DIR=DIR go test ./internal/azemu -run Contract

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/testenv"
)

// contractAllowlist names the documented fields azemu does not produce yet,
// as "example|status|field", each with the reason.
var contractAllowlist = map[string]string{
	"GalleryImageVersion_Create.json|201|properties.safetyProfile.policyViolations[].category":                                                         "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Create.json|201|properties.safetyProfile.policyViolations[].details":                                                          "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Create.json|201|properties.storageProfile.dataDiskImages[].hostCaching":                                                       "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Create.json|201|properties.storageProfile.dataDiskImages[].lun":                                                               "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Create.json|201|properties.storageProfile.dataDiskImages[].sizeInGB":                                                          "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Create_WithVHD.json|201|properties.safetyProfile.policyViolations[].category":                                                 "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Create_WithVHD.json|201|properties.safetyProfile.policyViolations[].details":                                                  "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Get.json|200|properties.safetyProfile.policyViolations[].category":                                                            "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Get.json|200|properties.safetyProfile.policyViolations[].details":                                                             "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Get.json|200|properties.storageProfile.dataDiskImages[].hostCaching":                                                          "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Get.json|200|properties.storageProfile.dataDiskImages[].lun":                                                                  "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Get.json|200|properties.storageProfile.dataDiskImages[].sizeInGB":                                                             "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Get_WithReplicationStatus.json|200|properties.safetyProfile.policyViolations[].category":                                      "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Get_WithReplicationStatus.json|200|properties.safetyProfile.policyViolations[].details":                                       "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_Get_WithReplicationStatus.json|200|properties.storageProfile.dataDiskImages[].hostCaching":                                    "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Get_WithReplicationStatus.json|200|properties.storageProfile.dataDiskImages[].lun":                                            "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Get_WithReplicationStatus.json|200|properties.storageProfile.dataDiskImages[].sizeInGB":                                       "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Update_WithoutSourceId.json|200|properties.storageProfile.dataDiskImages[].hostCaching":                                       "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Update_WithoutSourceId.json|200|properties.storageProfile.dataDiskImages[].lun":                                               "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Update_WithoutSourceId.json|200|properties.storageProfile.dataDiskImages[].sizeInGB":                                          "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_Update_WithoutSourceId.json|200|properties.publishingProfile.targetRegions[].encryption.dataDiskImages[].diskEncryptionSetId": "the PATCH replaces targetRegions with entries that carry no encryption; the example answer shows encryption its request did not send",
	"GalleryImageVersion_Update_WithoutSourceId.json|200|properties.publishingProfile.targetRegions[].encryption.dataDiskImages[].lun":                 "the PATCH replaces targetRegions with entries that carry no encryption; the example answer shows encryption its request did not send",
	"GalleryImageVersion_Update_WithoutSourceId.json|200|properties.publishingProfile.targetRegions[].encryption.osDiskImage.diskEncryptionSetId":      "the PATCH replaces targetRegions with entries that carry no encryption; the example answer shows encryption its request did not send",
	"GalleryImageVersion_ListByGalleryImage.json|200|value[].properties.safetyProfile.policyViolations[].category":                                     "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_ListByGalleryImage.json|200|value[].properties.safetyProfile.policyViolations[].details":                                      "policy-violation reports are not modelled (no content scanning)",
	"GalleryImageVersion_ListByGalleryImage.json|200|value[].properties.storageProfile.dataDiskImages[].hostCaching":                                   "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_ListByGalleryImage.json|200|value[].properties.storageProfile.dataDiskImages[].lun":                                           "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"GalleryImageVersion_ListByGalleryImage.json|200|value[].properties.storageProfile.dataDiskImages[].sizeInGB":                                      "data disk images are not modelled: a managed image source from a blob has only an OS disk",
	"Image_Get.json|200|properties.storageProfile.dataDisks[].blobUri":                                                                                 "data disks of managed images are not modelled (imgpipe images have an OS disk only)",
	"Image_Get.json|200|properties.storageProfile.dataDisks[].lun":                                                                                     "data disks of managed images are not modelled (imgpipe images have an OS disk only)",
	"Image_Get.json|200|properties.storageProfile.dataDisks[].managedDisk.id":                                                                          "data disks of managed images are not modelled (imgpipe images have an OS disk only)",
	"Image_Get.json|200|properties.storageProfile.dataDisks[].snapshot.id":                                                                             "data disks of managed images are not modelled (imgpipe images have an OS disk only)",
	"Image_Get.json|200|properties.storageProfile.dataDisks[].storageAccountType":                                                                      "data disks of managed images are not modelled (imgpipe images have an OS disk only)",
	"Image_Get.json|200|properties.storageProfile.osDisk.managedDisk.id":                                                                               "the example's OS disk names a blob, a disk and a snapshot at once; azemu keeps the one source the request gave (here a blob)",
	"Image_Get.json|200|properties.storageProfile.osDisk.snapshot.id":                                                                                  "the example's OS disk names a blob, a disk and a snapshot at once; azemu keeps the one source the request gave (here a blob)",
}

type contract struct {
	Example        string                      `json:"example"`
	OperationID    string                      `json:"operationId"`
	Method         string                      `json:"method"`
	Path           string                      `json:"path"`
	APIVersion     string                      `json:"apiVersion"`
	PathParameters map[string]string           `json:"pathParameters"`
	Query          map[string]string           `json:"query"`
	RequestBody    json.RawMessage             `json:"requestBody"`
	Responses      map[string]contractResponse `json:"responses"`
}

type contractResponse struct {
	Headers []string          `json:"headers"`
	Fields  map[string]string `json:"fields"`
}

func contractDir(t *testing.T) string {
	t.Helper()
	if d := os.Getenv("AZURE_CONTRACT_DIR"); d != "" {
		return d
	}
	root, err := testenv.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(root, "..", "shared", "azure-contract")
	if _, err := os.Stat(d); err != nil {
		// The contracts live beside the project, not in it (they are derived
		// from Microsoft's examples): a checkout without them skips, even in
		// CI. An AZURE_CONTRACT_DIR that is set but empty fails in TestContract.
		t.Skip("no contract directory at " + d + ": set AZURE_CONTRACT_DIR to replay contracts")
	}
	return d
}

func TestContract(t *testing.T) {
	dir := contractDir(t)
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no contracts in %s (%v)", dir, err)
	}
	az := testenv.StartAzurite(t)
	blobs, err := azblob.NewClientFromConnectionString(az.ConnectionString(), nil)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c contract
		if err := json.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			env := azemutest.Start(t, azemu.Options{Storage: azemu.Storage{BlobEndpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}})
			replayContract(t, env, blobs, filepath.Base(f), &c, used)
		})
	}
	for k := range contractAllowlist {
		if !used[k] && !t.Failed() {
			t.Errorf("allowlist entry %q is not needed any more: remove it", k)
		}
	}
}

const contractImage = "contractImage"

func replayContract(t *testing.T, env *azemutest.Env, blobs *azblob.Client, file string, c *contract, used map[string]bool) {
	ctx := context.Background()
	pp := map[string]string{}
	for k, v := range c.PathParameters {
		pp[k] = v
	}
	pp["subscriptionId"] = env.SubscriptionID
	// list examples name no child: the setup creates one with these names
	for k, v := range map[string]string{"galleryImageName": "contractDefinition", "galleryImageVersionName": "1.0.0"} {
		if _, ok := pp[k]; !ok {
			pp[k] = v
		}
	}
	rg := pp["resourceGroupName"]
	repl := strings.NewReplacer("{subscriptionId}", env.SubscriptionID, "{subscription-id}", env.SubscriptionID,
		"{resourceGroup}", rg, "{imageName}", contractImage, "{storageAccount}", "contractstorage")
	var body any
	if len(c.RequestBody) > 0 && string(c.RequestBody) != "null" {
		if err := json.Unmarshal([]byte(repl.Replace(string(c.RequestBody))), &body); err != nil {
			t.Fatal(err)
		}
	}

	// parents and referenced resources
	cf, err := armcompute.NewClientFactory(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	rgs, _ := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if _, err := rgs.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr("westus")}, nil); err != nil {
		t.Fatal(err)
	}
	upload := func(u string) {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.SplitN(strings.TrimPrefix(pu.Path, "/"), "/", 2)
		if _, err := blobs.CreateContainer(ctx, parts[0], nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
			t.Fatal(err)
		}
		pb := blobs.ServiceClient().NewContainerClient(parts[0]).NewPageBlobClient(parts[1])
		if _, err := pb.Create(ctx, 1<<20, nil); err != nil {
			t.Fatalf("blob %s: %v", u, err)
		}
	}
	// every blob URI in the body exists in the blob service
	walkStrings(body, func(k, v string) {
		if (k == "uri" || k == "blobUri") && strings.HasPrefix(v, "https://") {
			upload(v)
		}
	})
	wait := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("setup: %v", err)
		}
	}
	op := c.OperationID
	needGallery := strings.HasPrefix(op, "Galleries_") && op != "Galleries_CreateOrUpdate" || strings.HasPrefix(op, "GalleryImage")
	needDef := strings.HasPrefix(op, "GalleryImages_") && op != "GalleryImages_CreateOrUpdate" || strings.HasPrefix(op, "GalleryImageVersions_")
	needVersion := strings.HasPrefix(op, "GalleryImageVersions_") && op != "GalleryImageVersions_CreateOrUpdate"
	needSourceImage := strings.HasPrefix(op, "GalleryImageVersions_")
	if needGallery {
		p, err := cf.NewGalleriesClient().BeginCreateOrUpdate(ctx, rg, pp["galleryName"], armcompute.Gallery{
			Location: to.Ptr("westus"), Properties: &armcompute.GalleryProperties{Description: to.Ptr("contract gallery")},
		}, nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
	}
	if needDef {
		p, err := cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, rg, pp["galleryName"], pp["galleryImageName"], defBody("westus", "V1", "contract"), nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
	}
	imageName := contractImage
	if op == "Images_Get" || op == "Images_Delete" {
		imageName = pp["imageName"]
	}
	if needSourceImage || op == "Images_Get" || op == "Images_Delete" {
		u := "https://contractstorage.blob.core.windows.net/sources/" + imageName + ".vhd"
		upload(u)
		p, err := cf.NewImagesClient().BeginCreateOrUpdate(ctx, rg, imageName, armcompute.Image{
			Location: to.Ptr("westus"),
			Properties: &armcompute.ImageProperties{StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
				OSType: to.Ptr(armcompute.OperatingSystemTypesWindows), OSState: to.Ptr(armcompute.OperatingSystemStateTypesGeneralized), BlobURI: to.Ptr(u),
			}}},
		}, nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
	}
	if needVersion {
		imgID := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/images/" + contractImage
		vb := versionBody("westus", imgID)
		des := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/diskEncryptionSets/contractDES"
		vb.Properties.PublishingProfile.TargetRegions[0].Encryption = &armcompute.EncryptionImages{
			OSDiskImage:    &armcompute.OSDiskImageEncryption{DiskEncryptionSetID: to.Ptr(des)},
			DataDiskImages: []*armcompute.DataDiskImageEncryption{{Lun: to.Ptr[int32](0), DiskEncryptionSetID: to.Ptr(des)}},
		}
		p, err := cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, rg, pp["galleryName"], pp["galleryImageName"], pp["galleryImageVersionName"], vb, nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
	}
	// lists get a second item on a second page, so nextLink is exercised
	switch op {
	case "GalleryImages_ListByGallery":
		p, err := cf.NewGalleryImagesClient().BeginCreateOrUpdate(ctx, rg, pp["galleryName"], pp["galleryImageName"]+"2", defBody("westus", "V1", "contract2"), nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
		env.Server.SetPageSize(1)
	case "GalleryImageVersions_ListByGalleryImage":
		imgID := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/images/" + contractImage
		p, err := cf.NewGalleryImageVersionsClient().BeginCreateOrUpdate(ctx, rg, pp["galleryName"], pp["galleryImageName"], "1.0.1", versionBody("westus", imgID), nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
		env.Server.SetPageSize(1)
	}
	if op == "Disks_GrantAccess" || op == "Disks_RevokeAccess" {
		p, err := cf.NewDisksClient().BeginCreateOrUpdate(ctx, rg, pp["diskName"], armcompute.Disk{
			Location:   to.Ptr("westus"),
			Properties: &armcompute.DiskProperties{DiskSizeGB: to.Ptr[int32](32), CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionEmpty)}},
		}, nil)
		wait(err)
		_, err = p.PollUntilDone(ctx, pollFast)
		wait(err)
	}

	// the request
	path := c.Path
	for k, v := range pp {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	if strings.Contains(path, "{") {
		t.Fatalf("unfilled path parameter in %s", path)
	}
	q := url.Values{"api-version": {c.APIVersion}}
	for k, v := range c.Query {
		q.Set(k, v)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(c.Method, env.Server.URL()+path+"?"+q.Encode(), rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+env.Token(t))
	req.Header.Set("Content-Type", "application/json")
	resp, err := env.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	status := fmt.Sprint(resp.StatusCode)
	want, ok := c.Responses[status]
	if !ok {
		var keys []string
		for k := range c.Responses {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		t.Fatalf("%s %s answered %s, the contract lists %v: %s", c.Method, path, status, keys, raw)
	}
	for _, h := range want.Headers {
		if resp.Header.Get(h) == "" {
			t.Errorf("status %s: header %s missing", status, h)
		}
	}
	var got any
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			t.Fatalf("body is not JSON: %q", raw)
		}
	}
	var fields []string
	for f := range want.Fields {
		fields = append(fields, f)
	}
	sort.Strings(fields)
	for _, f := range fields {
		typ := want.Fields[f]
		k := file + "|" + status + "|" + f
		vals := lookupField(got, strings.Split(f, "."))
		okType := len(vals) > 0
		for _, v := range vals {
			if jsonType(v, typ) != typ {
				okType = false
			}
		}
		if okType {
			continue
		}
		if _, allowed := contractAllowlist[k]; allowed {
			used[k] = true
			continue
		}
		if len(vals) == 0 {
			t.Errorf("status %s: field %s (%s) missing", status, f, typ)
		} else {
			t.Errorf("status %s: field %s is %v, want %s", status, f, vals, typ)
		}
	}
}

// lookupField returns every value reached by a dotted path; "name[]" goes
// through each element of an array.
func lookupField(v any, path []string) []any {
	if len(path) == 0 {
		return []any{v}
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	seg := path[0]
	if name, isArr := strings.CutSuffix(seg, "[]"); isArr {
		arr, ok := m[name].([]any)
		if !ok {
			return nil
		}
		var out []any
		for _, e := range arr {
			out = append(out, lookupField(e, path[1:])...)
		}
		return out
	}
	next, ok := m[seg]
	if !ok {
		return nil
	}
	return lookupField(next, path[1:])
}

// jsonType names v's JSON type; a whole number is "integer" unless want is
// "number" (an integer is also a number).
func jsonType(v any, want string) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		return "array"
	case json.Number:
		if want == "number" {
			return "number"
		}
		if _, err := x.Int64(); err == nil {
			return "integer"
		}
		return "number"
	}
	return fmt.Sprintf("%T", v)
}

func walkStrings(v any, f func(key, val string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok {
				f(k, s)
			} else {
				walkStrings(e, f)
			}
		}
	case []any:
		for _, e := range x {
			walkStrings(e, f)
		}
	}
}
