package azemu_test

// The contract test replays Azure REST API examples against azemu: the
// derived ones in AZURE_CONTRACT_DIR (default ../shared/azure-contract next
// to the repository; see its README for the format) or, in the same
// directory, official example files of Azure/azure-rest-api-specs
// (parameters + responses with bodies; the operation is found from the file
// name, e.g. GalleryImageVersion_Create_WithVHD.json). For each example it
// creates what the request path and body reference (resource group, parents,
// the resource itself for reads and actions, two items for a list, and every
// resource id and blob URI in the body), sends the request, and checks that
// the status is one the example documents and that every documented header
// and body field is there with the documented JSON type. List answers are
// paged through (one item per page). There is no per-example setup: an
// example of an implemented operation that fails points at the emulator.
//
//	AZURE_CONTRACT_DIR=DIR go test ./internal/azemu -run Contract -v

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/testenv"
)

// contractAllowlist names the documented fields azemu does not produce,
// keyed by "resource type|field" (fields of list items without their
// "value[]." prefix), each with the reason.
var contractAllowlist = map[string]string{
	"Microsoft.Compute/galleries/images/versions|properties.safetyProfile.policyViolations[].category":                                         "policy-violation reports are not modelled (no content scanning)",
	"Microsoft.Compute/galleries/images/versions|properties.safetyProfile.policyViolations[].details":                                          "policy-violation reports are not modelled (no content scanning)",
	"Microsoft.Compute/galleries/images/versions|properties.storageProfile.dataDiskImages[].hostCaching":                                       "the replay's version comes from a managed image made from one blob: it has an OS disk only (data disks are modelled for disk, snapshot and VHD sources)",
	"Microsoft.Compute/galleries/images/versions|properties.storageProfile.dataDiskImages[].lun":                                               "the replay's version comes from a managed image made from one blob: it has an OS disk only (data disks are modelled for disk, snapshot and VHD sources)",
	"Microsoft.Compute/galleries/images/versions|properties.storageProfile.dataDiskImages[].sizeInGB":                                          "the replay's version comes from a managed image made from one blob: it has an OS disk only (data disks are modelled for disk, snapshot and VHD sources)",
	"Microsoft.Compute/galleries/images/versions|properties.publishingProfile.targetRegions[].encryption.dataDiskImages[].diskEncryptionSetId": "the example's answer shows encryption its request did not send (a PATCH replacing targetRegions); azemu returns what was sent",
	"Microsoft.Compute/galleries/images/versions|properties.publishingProfile.targetRegions[].encryption.dataDiskImages[].lun":                 "the example's answer shows encryption its request did not send (a PATCH replacing targetRegions); azemu returns what was sent",
	"Microsoft.Compute/galleries/images/versions|properties.publishingProfile.targetRegions[].encryption.osDiskImage.diskEncryptionSetId":      "the example's answer shows encryption its request did not send (a PATCH replacing targetRegions); azemu returns what was sent",
	"Microsoft.Compute/images|properties.storageProfile.dataDisks[].blobUri":                                                                   "the replay's managed image is made from one blob: data disks of managed images are not modelled",
	"Microsoft.Compute/images|properties.storageProfile.dataDisks[].lun":                                                                       "the replay's managed image is made from one blob: data disks of managed images are not modelled",
	"Microsoft.Compute/images|properties.storageProfile.dataDisks[].managedDisk.id":                                                            "the replay's managed image is made from one blob: data disks of managed images are not modelled",
	"Microsoft.Compute/images|properties.storageProfile.dataDisks[].snapshot.id":                                                               "the replay's managed image is made from one blob: data disks of managed images are not modelled",
	"Microsoft.Compute/images|properties.storageProfile.dataDisks[].storageAccountType":                                                        "the replay's managed image is made from one blob: data disks of managed images are not modelled",
	"Microsoft.Compute/images|properties.storageProfile.osDisk.managedDisk.id":                                                                 "the example's OS disk names a blob, a disk and a snapshot at once; azemu keeps the one source the request gave (a blob)",
	"Microsoft.Compute/images|properties.storageProfile.osDisk.snapshot.id":                                                                    "the example's OS disk names a blob, a disk and a snapshot at once; azemu keeps the one source the request gave (a blob)",
}

type contract struct {
	Example        string                      `json:"example"`
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
	official := os.Getenv("AZURE_CONTRACT_DIR") != ""
	passed, failed, skipped := 0, 0, 0
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		c, why, err := loadContract(filepath.Base(f), data)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		ok := t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			if c == nil {
				t.Skip(why)
			}
			env := azemutest.Start(t, azemu.Options{Storage: azemu.Storage{BlobEndpoint: az.BlobEndpoint, AccountName: az.AccountName, AccountKey: az.AccountKey}})
			r := &replay{t: t, env: env, blobs: blobs, c: c, used: used, done: map[string]bool{}}
			r.run()
		})
		switch {
		case c == nil:
			skipped++
		case ok:
			passed++
		default:
			failed++
		}
	}
	t.Logf("contract replay of %s: %d passed, %d failed, %d skipped (operations azemu does not implement)", dir, passed, failed, skipped)
	if official {
		return // an official set exercises a subset of the allowlist
	}
	for k := range contractAllowlist {
		if !used[k] && !t.Failed() {
			t.Errorf("allowlist entry %q is not needed any more: remove it", k)
		}
	}
}

// ---- official examples ---------------------------------------------------------

// officialOps maps the resource part of an official example's file name to
// the ARM path of the resource and the verbs azemu implements for it.
var officialOps = map[string]struct {
	path string
	coll string
	acts map[string]string // verb prefix -> METHOD[ action]
}{
	"Gallery":             {"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/{galleryName}", "galleries", map[string]string{"Create": "PUT", "Get": "GET", "Update": "PATCH", "Delete": "DELETE", "AddToSharingProfile": "POST share", "ResetSharingProfile": "POST share", "ListByResourceGroup": "LIST rg", "ListBySubscription": "LIST sub"}},
	"GalleryImage":        {"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}", "images", map[string]string{"Create": "PUT", "Get": "GET", "Update": "PATCH", "Delete": "DELETE", "ListByGallery": "LIST parent"}},
	"GalleryImageVersion": {"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/galleries/{galleryName}/images/{galleryImageName}/versions/{galleryImageVersionName}", "versions", map[string]string{"Create": "PUT", "Get": "GET", "Update": "PATCH", "Delete": "DELETE", "ListByGalleryImage": "LIST parent"}},
	"Image":               {"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/images/{imageName}", "images", map[string]string{"Create": "PUT", "Get": "GET", "Update": "PATCH", "Delete": "DELETE", "ListByResourceGroup": "LIST rg", "ListBySubscription": "LIST sub"}},
	"Disk":                {"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/disks/{diskName}", "disks", map[string]string{"Create": "PUT", "Get": "GET", "Delete": "DELETE", "BeginGetAccess": "POST beginGetAccess", "EndGetAccess": "POST endGetAccess", "ListByResourceGroup": "LIST rg", "ListBySubscription": "LIST sub"}},
	"Snapshot":            {"/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/Microsoft.Compute/snapshots/{snapshotName}", "snapshots", map[string]string{"Create": "PUT", "Get": "GET", "Delete": "DELETE", "ListByResourceGroup": "LIST rg"}},
}

// loadContract reads a derived contract, or converts an official example.
// A nil contract with a reason means the operation is not implemented.
func loadContract(file string, data []byte) (*contract, string, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, "", err
	}
	if _, ok := probe["method"]; ok {
		var c contract
		err := json.Unmarshal(data, &c)
		return &c, "", err
	}
	var ex struct {
		Parameters map[string]json.RawMessage `json:"parameters"`
		Responses  map[string]struct {
			Headers map[string]any `json:"headers"`
			Body    any            `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(data, &ex); err != nil {
		return nil, "", err
	}
	name := strings.TrimSuffix(file, ".json")
	resName, verb, _ := strings.Cut(name, "_")
	resName = strings.TrimSuffix(resName, "s") // Images_Delete_...
	if resName == "Galleries" || resName == "Gallerie" {
		resName = "Gallery"
	}
	op, ok := officialOps[resName]
	if !ok {
		return nil, "resource " + resName + " is not emulated", nil
	}
	var how string
	for prefix, h := range op.acts {
		if strings.HasPrefix(verb, prefix) && len(prefix) > 0 && (how == "" || len(prefix) > len(strings.Fields(how)[0])) {
			how = h
		}
	}
	if how == "" {
		return nil, "operation " + verb + " of " + resName + " is not emulated", nil
	}
	c := &contract{Example: file, PathParameters: map[string]string{}, Query: map[string]string{}, Responses: map[string]contractResponse{}}
	for k, v := range ex.Parameters {
		var s string
		if json.Unmarshal(v, &s) != nil {
			if k != "api-version" {
				c.RequestBody = v // the one object parameter is the body
			}
			continue
		}
		switch {
		case k == "api-version":
			c.APIVersion = s
		case strings.HasPrefix(k, "$"):
			c.Query[k] = s
		case strings.Contains(op.path, "{"+k+"}") || k == "subscriptionId" || k == "resourceGroupName":
			c.PathParameters[k] = s
		}
	}
	fields := strings.Fields(how)
	c.Method, c.Path = fields[0], op.path
	switch {
	case c.Method == "POST":
		c.Path += "/" + fields[1]
	case c.Method == "LIST":
		c.Method = "GET"
		switch fields[1] {
		case "parent":
			c.Path = c.Path[:strings.LastIndex(c.Path, "/")]
		case "rg":
			c.Path = c.Path[:strings.Index(c.Path, "/providers/")] + "/providers/Microsoft.Compute/" + op.coll
		case "sub":
			c.Path = "/subscriptions/{subscriptionId}/providers/Microsoft.Compute/" + op.coll
		}
	}
	for status, r := range ex.Responses {
		cr := contractResponse{Fields: map[string]string{}}
		for h := range r.Headers {
			cr.Headers = append(cr.Headers, h)
		}
		leafTypes(r.Body, "", cr.Fields)
		c.Responses[status] = cr
	}
	return c, "", nil
}

// leafTypes records the JSON type of every leaf of v under prefix.
func leafTypes(v any, prefix string, out map[string]string) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		if len(x) == 0 && prefix != "" {
			out[prefix] = "object"
		}
		for k, e := range x {
			leafTypes(e, join(k), out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = "array"
		}
		for _, e := range x {
			leafTypes(e, prefix+"[]", out)
		}
	case nil:
		if prefix != "" {
			out[prefix] = "null"
		}
	case string:
		out[prefix] = "string"
	case bool:
		out[prefix] = "boolean"
	case float64:
		if x == float64(int64(x)) {
			out[prefix] = "integer"
		} else {
			out[prefix] = "number"
		}
	}
}

// ---- the replay ------------------------------------------------------------------

type replay struct {
	t     *testing.T
	env   *azemutest.Env
	blobs *azblob.Client
	c     *contract
	used  map[string]bool
	done  map[string]bool // ids created
	tok   string
	blobN int
}

var placeholderRE = regexp.MustCompile(`\{[A-Za-z][A-Za-z0-9_-]*\}`)

// fill replaces the placeholders of ids and names in a body with names the
// emulator accepts (the subscription with the emulator's).
func (r *replay) fill(s string) string {
	return placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		switch p {
		case "{subscriptionId}", "{subscription-id}", "{subscription}":
			return r.env.SubscriptionID
		}
		var b strings.Builder
		for _, ch := range strings.ToLower(p) {
			if ch >= 'a' && ch <= 'z' || ch >= '0' && ch <= '9' {
				b.WriteRune(ch)
			}
		}
		return b.String()
	})
}

func (r *replay) run() {
	t, c := r.t, r.c
	pp := map[string]string{}
	for k, v := range c.PathParameters {
		pp[k] = v
	}
	pp["subscriptionId"] = r.env.SubscriptionID
	path := c.Path
	for k, v := range pp {
		path = strings.ReplaceAll(path, "{"+k+"}", url.PathEscape(v))
	}
	if strings.Contains(path, "{") {
		t.Fatalf("unfilled path parameter in %s", path)
	}
	var body any
	if len(c.RequestBody) > 0 && string(c.RequestBody) != "null" {
		if err := json.Unmarshal([]byte(r.fill(string(c.RequestBody))), &body); err != nil {
			t.Fatal(err)
		}
	}
	loc := "westus"
	if m, ok := body.(map[string]any); ok {
		if l, ok := m["location"].(string); ok && l != "" {
			loc = strings.ToLower(strings.ReplaceAll(l, " ", ""))
		}
	}
	sub := r.env.SubscriptionID
	rg := pp["resourceGroupName"]
	if rg != "" {
		r.ensure("/subscriptions/"+sub+"/resourceGroups/"+rg, loc)
	}

	// what the path names: the item, its parent, or a collection
	segs := strings.Split(strings.Trim(path, "/"), "/")
	pi := -1
	for i, s := range segs {
		if strings.EqualFold(s, "providers") {
			pi = i
		}
	}
	if pi < 0 {
		t.Fatalf("%s names no provider", path)
	}
	tail := segs[pi+2:]
	action := ""
	if c.Method == http.MethodPost && len(tail)%2 == 1 {
		action, tail = tail[len(tail)-1], tail[:len(tail)-1]
	}
	base := "/" + strings.Join(segs[:pi+2], "/")
	itemType := segs[pi+1]
	for i := 0; i < len(tail); i += 2 {
		itemType += "/" + tail[i]
	}
	isList := len(tail)%2 == 1
	itemID := base + "/" + strings.Join(tail, "/")
	switch {
	case isList:
		parent := base
		if len(tail) > 1 {
			parent += "/" + strings.Join(tail[:len(tail)-1], "/")
			r.ensure(parent, loc)
		}
		if rg == "" { // subscription scope: the items live in a resource group of their own
			r.ensure("/subscriptions/"+sub+"/resourceGroups/contractrg", loc)
			parent = "/subscriptions/" + sub + "/resourceGroups/contractrg/providers/" + segs[pi+1]
		}
		names := []string{"contractitem1", "contractitem2"}
		if strings.EqualFold(tail[len(tail)-1], "versions") {
			names = []string{"1.0.1", "1.0.2"} // version names are MAJOR.MINOR.PATCH
		}
		for _, n := range names {
			r.ensure(parent+"/"+tail[len(tail)-1]+"/"+n, loc)
		}
		r.env.Server.SetPageSize(1)
	case c.Method == http.MethodPut:
		if len(tail) > 2 {
			r.ensure(base+"/"+strings.Join(tail[:len(tail)-2], "/"), loc)
		}
	default:
		r.ensure(itemID, loc)
	}
	// what the body references
	r.references(body, loc, sub, rg)

	q := url.Values{"api-version": {c.APIVersion}}
	for k, v := range c.Query {
		q.Set(k, v)
	}
	if action != "" {
		itemID += "/" + action
	}
	status, hdr, got := r.do(c.Method, r.env.Server.URL()+itemID+"?"+q.Encode(), body)
	want, ok := c.Responses[fmt.Sprint(status)]
	if !ok {
		var keys []string
		for k := range c.Responses {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		raw, _ := json.Marshal(got)
		t.Fatalf("%s %s answered %d, the example lists %v: %s", c.Method, itemID, status, keys, raw)
	}
	for _, h := range want.Headers {
		if hdr.Get(h) == "" {
			t.Errorf("status %d: header %s missing", status, h)
		}
	}
	r.checkFields(itemType, status, want.Fields, got, isList)
	if isList {
		// page through: every page is a 200 whose items have the documented fields
		items, pages := len(listValue(got)), 1
		for next, _ := got.(map[string]any)["nextLink"].(string); next != ""; next, _ = got.(map[string]any)["nextLink"].(string) {
			if pages > 10 {
				t.Fatal("more than 10 pages for 2 items")
			}
			status, _, got = r.do(http.MethodGet, next, nil)
			if status != http.StatusOK {
				t.Fatalf("nextLink %s answered %d", next, status)
			}
			items += len(listValue(got))
			pages++
			item := map[string]string{}
			for f, typ := range want.Fields {
				if strings.HasPrefix(f, "value[].") {
					item[f] = typ
				}
			}
			r.checkFields(itemType, status, item, got, true)
		}
		if items != 2 || pages != 2 {
			t.Errorf("listed %d items on %d pages, want the 2 created on 2 pages", items, pages)
		}
	}
}

func listValue(v any) []any {
	m, _ := v.(map[string]any)
	l, _ := m["value"].([]any)
	return l
}

func (r *replay) checkFields(itemType string, status int, fields map[string]string, got any, isList bool) {
	t := r.t
	var names []string
	for f := range fields {
		names = append(names, f)
	}
	sort.Strings(names)
	for _, f := range names {
		typ := fields[f]
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
		k := itemType + "|" + strings.TrimPrefix(f, "value[].")
		if _, allowed := contractAllowlist[k]; allowed {
			r.used[k] = true
			continue
		}
		if len(vals) == 0 {
			t.Errorf("status %d: field %s (%s) missing", status, f, typ)
		} else {
			t.Errorf("status %d: field %s is %v, want %s", status, f, vals, typ)
		}
	}
}

// references creates every resource an id in the body names and every blob a
// URI names (in the storage account its sibling storageAccountId names, when
// there is one).
func (r *replay) references(v any, loc, sub, rg string) {
	switch x := v.(type) {
	case map[string]any:
		// Each blob reference gets a blob of its own (README: URIs are
		// replaced by those of the resources the replay creates), in the
		// account its sibling storageAccountId names. (The official
		// GalleryImageVersion_Create_WithVHD example points its OS and data
		// disk at one blob, which Azure refuses: "OSDiskImage and
		// DataDiskImage cannot point to the same blob", troubleshooting-shared-images.)
		for _, k := range []string{"uri", "blobUri", "sourceUri"} {
			u, ok := x[k].(string)
			if !ok || !strings.HasPrefix(u, "https://") {
				continue
			}
			if acct, ok := x["storageAccountId"].(string); ok {
				u = withAccountHost(u, acct[strings.LastIndex(acct, "/")+1:])
			}
			r.blobN++
			if i := strings.LastIndex(u, "/"); i > 0 {
				u = u[:i+1] + fmt.Sprintf("b%d-", r.blobN) + u[i+1:]
			}
			x[k] = u
		}
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys) // storage accounts (by id) before their blobs
		for _, k := range keys {
			e := x[k]
			s, isStr := e.(string)
			switch {
			case !isStr:
				r.references(e, loc, sub, rg)
			case (k == "uri" || k == "blobUri" || k == "sourceUri") && strings.HasPrefix(s, "https://"):
				r.blob(s, loc, sub, rg)
			case strings.HasSuffix(strings.ToLower(k), "id") && strings.Contains(strings.ToLower(s), "/providers/"):
				r.ensure(s, loc)
			}
		}
	case []any:
		for _, e := range x {
			r.references(e, loc, sub, rg)
		}
	}
}

func withAccountHost(u, account string) string {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return u
	}
	pu.Host = strings.ToLower(account) + ".blob.core.windows.net"
	return pu.String()
}

// blob uploads a 1 MiB page blob at u, in its storage account.
func (r *replay) blob(u, loc, sub, rg string) {
	pu, err := url.Parse(u)
	if err != nil {
		r.t.Fatal(err)
	}
	if rg == "" {
		rg = "contractrg"
	}
	acct := strings.TrimSuffix(strings.ToLower(pu.Hostname()), ".blob.core.windows.net")
	if existing := r.env.Server.ResourceIDs("Microsoft.Storage/storageAccounts"); !containsName(existing, acct) {
		r.ensure("/subscriptions/"+sub+"/resourceGroups/"+rg+"/providers/Microsoft.Storage/storageAccounts/"+acct, loc)
	}
	ctx := r.t.Context()
	parts := strings.SplitN(strings.TrimPrefix(pu.Path, "/"), "/", 2)
	if _, err := r.blobs.CreateContainer(ctx, parts[0], nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		r.t.Fatal(err)
	}
	pb := r.blobs.ServiceClient().NewContainerClient(parts[0]).NewPageBlobClient(parts[1])
	if _, err := pb.Create(ctx, 1<<20, nil); err != nil {
		r.t.Fatalf("blob %s: %v", u, err)
	}
}

func containsName(ids []string, name string) bool {
	for _, id := range ids {
		if strings.EqualFold(id[strings.LastIndex(id, "/")+1:], name) {
			return true
		}
	}
	return false
}

// ensure creates the resource id names (and what it needs), with a minimal
// body of its type, in loc. Types azemu does not emulate are left alone.
func (r *replay) ensure(id, loc string) {
	id = "/" + strings.Trim(id, "/")
	k := strings.ToLower(id)
	if r.done[k] {
		return
	}
	r.done[k] = true
	segs := strings.Split(strings.Trim(id, "/"), "/")
	if len(segs) < 4 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[2], "resourceGroups") {
		return
	}
	sub, rg := segs[1], segs[3]
	rgPath := "/subscriptions/" + sub + "/resourceGroups/" + rg
	if len(segs) == 4 {
		if r.env.Server.Exists(rgPath) {
			return
		}
		r.put(rgPath, "2021-04-01", map[string]any{"location": loc})
		return
	}
	r.ensure(rgPath, loc)
	if len(segs) < 8 || len(segs)%2 != 0 {
		return
	}
	typ := segs[5] + "/" + segs[6]
	for i := 8; i < len(segs); i += 2 {
		typ += "/" + segs[i]
	}
	name := segs[len(segs)-1]
	parent := "/" + strings.Join(segs[:len(segs)-2], "/")
	if r.env.Server.Exists(id) {
		return
	}
	const gal, comp, disk = "2026-03-03", "2026-04-01", "2025-01-02"
	switch strings.ToLower(typ) {
	case "microsoft.storage/storageaccounts":
		r.put(id, "2024-01-01", map[string]any{"location": loc, "kind": "StorageV2", "sku": map[string]any{"name": "Standard_LRS"}})
	case "microsoft.compute/galleries":
		r.put(id, gal, map[string]any{"location": loc, "properties": map[string]any{"description": "contract replay", "sharingProfile": map[string]any{"permissions": "Groups"}}})
	case "microsoft.compute/galleries/images":
		r.ensure(parent, loc)
		r.put(id, gal, map[string]any{"location": loc, "properties": map[string]any{
			"osType": "Windows", "osState": "Generalized", "hyperVGeneration": "V1", "description": "contract replay",
			"identifier": map[string]any{"publisher": name, "offer": name, "sku": name},
		}})
	case "microsoft.compute/galleries/images/versions":
		r.ensure(parent, loc)
		img := rgPath + "/providers/Microsoft.Compute/images/contractsource" + loc
		r.ensure(img, loc)
		r.put(id, gal, map[string]any{"location": loc, "properties": map[string]any{
			"publishingProfile": map[string]any{"targetRegions": []any{map[string]any{"name": loc, "regionalReplicaCount": 1}}},
			"storageProfile":    map[string]any{"source": map[string]any{"id": img}},
		}})
	case "microsoft.compute/images":
		u := "https://contractsrc" + loc + ".blob.core.windows.net/sources/" + name + ".vhd"
		r.blob(u, loc, sub, rg)
		r.put(id, comp, map[string]any{"location": loc, "properties": map[string]any{
			"hyperVGeneration": "V1",
			"storageProfile":   map[string]any{"osDisk": map[string]any{"osType": "Windows", "osState": "Generalized", "blobUri": u}},
		}})
	case "microsoft.compute/disks":
		r.put(id, disk, map[string]any{"location": loc, "properties": map[string]any{
			"osType": "Windows", "diskSizeGB": 32, "creationData": map[string]any{"createOption": "Empty"},
		}})
	case "microsoft.compute/snapshots":
		d := rgPath + "/providers/Microsoft.Compute/disks/" + name + "disk"
		r.ensure(d, loc)
		r.put(id, disk, map[string]any{"location": loc, "properties": map[string]any{
			"creationData": map[string]any{"createOption": "Copy", "sourceResourceId": d},
		}})
	}
}

// put creates a resource and waits for its long-running operation.
func (r *replay) put(id, apiVersion string, body any) {
	r.t.Helper()
	status, hdr, got := r.do(http.MethodPut, r.env.Server.URL()+id+"?api-version="+apiVersion, body)
	if status >= 300 {
		raw, _ := json.Marshal(got)
		r.t.Fatalf("setup: PUT %s answered %d: %s", id, status, raw)
	}
	op := hdr.Get("Azure-AsyncOperation")
	if op == "" {
		if loc := hdr.Get("Location"); loc != "" && status == http.StatusAccepted {
			op = loc
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for op != "" && time.Now().Before(deadline) {
		s, _, st := r.do(http.MethodGet, op, nil)
		m, _ := st.(map[string]any)
		if s == http.StatusOK && (m["status"] == nil || m["status"] == "Succeeded") {
			return
		}
		if m["status"] == "Failed" || m["status"] == "Canceled" || s >= 400 {
			raw, _ := json.Marshal(st)
			r.t.Fatalf("setup: PUT %s: operation ended %d: %s", id, s, raw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if op != "" {
		r.t.Fatalf("setup: PUT %s did not finish", id)
	}
}

func (r *replay) do(method, u string, body any) (int, http.Header, any) {
	r.t.Helper()
	if r.tok == "" {
		r.tok = r.env.Token(r.t)
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+r.tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.env.HTTPClient().Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var got any
	if len(bytes.TrimSpace(raw)) > 0 {
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(&got); err != nil {
			r.t.Fatalf("%s %s: body is not JSON: %q", method, u, raw)
		}
	}
	return resp.StatusCode, resp.Header, got
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
