package azure

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"imgpipe/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func azureErr(method, path string, status int, body string) error {
	u, _ := url.Parse("https://management.azure.com" + path)
	req := &http.Request{Method: method, URL: u, Header: http.Header{}}
	resp := &http.Response{StatusCode: status, Request: req, Header: http.Header{"Content-Type": {"application/json"}},
		Body: io.NopCloser(bytes.NewBufferString(body))}
	return runtime.NewResponseError(resp)
}

func TestExplainGolden(t *testing.T) {
	gal := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal"
	tests := []struct {
		name string
		err  error
	}{
		{"cannot-delete", fmt.Errorf("delete gallery gal: %w", azureErr("DELETE", gal+"?api-version=2026-03-03", 409,
			`{"error":{"code":"CannotDeleteResource","message":"Can not delete resource before nested resources are deleted.","details":[{"code":"NestedResourceExists","message":"Nested resource 'gal/images/web' exists."}]}}`))},
		{"property-change", azureErr("PUT", gal+"/images/web?api-version=2026-03-03", 409,
			`{"error":{"code":"PropertyChangeNotAllowed","message":"Changing property 'galleryImage.properties.hyperVGeneration' is not allowed.","target":"galleryImage.properties.hyperVGeneration"}}`)},
		{"forbidden-no-body", azureErr("GET", gal+"?api-version=2026-03-03", 403, ``)},
		{"throttled", azureErr("PUT", gal+"?api-version=2026-03-03", 429, `{"error":{"code":"TooManyRequests","message":"slow down"}}`)},
		{"sas-not-shown", azureErr("PUT", "/c/b.vhd?sv=2020&sig=SECRET", 404, `{"error":{"code":"ResourceNotFound","message":"gone"}}`)},
		{"plain", errors.New("not an Azure error")},
		{"generation-conflict-lro", fmt.Errorf("create version 1.0.0: %w", azureErr("GET", "/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/op1?api-version=2026-03-03", 200,
			`{"name":"op1","status":"Failed","error":{"code":"Conflict","message":"The resource with id '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/web-1.0.0' has a different Hypervisor generation ['V2'] than the parent gallery image Hypervisor generation ['V1']."}}`))},
		{"identifier-conflict", azureErr("PUT", gal+"/images/web?api-version=2026-03-03", 409,
			`{"error":{"code":"Conflict","message":"Gallery image older identified by (publisher:imgpipe, offer:web, sku:web) already exists. Choose a different publisher, offer, sku combination."}}`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain(tt.err) + "\n"
			golden.Check(t, filepath.Join("testdata", "explain", tt.name+".golden"), got, *update)
			if bytes.Contains([]byte(got), []byte("SECRET")) {
				t.Error("a SAS signature was rendered")
			}
		})
	}
}

// TestRetryClassification: the one classification (isPermanent) decides what
// a fresh attempt may cure; the generation Conflict of a failed operation is
// permanent, a concurrent operation or Azure's own failure is not.
func TestRetryClassification(t *testing.T) {
	lro := func(code string) error {
		return azureErr("GET", "/subscriptions/s/providers/Microsoft.Compute/locations/westeurope/operations/op?api-version=2026-03-03", 200,
			`{"status":"Failed","error":{"code":"`+code+`","message":"m"}}`)
	}
	sync := func(status int, code string) error {
		return azureErr("PUT", "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g?api-version=2026-03-03", status,
			`{"error":{"code":"`+code+`","message":"m"}}`)
	}
	for _, tc := range []struct {
		name      string
		err       error
		permanent bool
	}{
		{"generation Conflict of a failed operation", lro("Conflict"), true},
		{"InvalidParameter of a failed operation", lro("InvalidParameter"), true},
		{"internal failure of an operation", lro("InternalOperationError"), false},
		{"409 Conflict", sync(409, "Conflict"), true},
		{"409 AnotherOperationInProgress", sync(409, "AnotherOperationInProgress"), false},
		{"409 CannotDeleteResource (consistency lag)", sync(409, "CannotDeleteResource"), false},
		{"400 InvalidParameter", sync(400, "InvalidParameter"), true},
		{"403 LinkedAuthorizationFailed", sync(403, "LinkedAuthorizationFailed"), true},
		{"429", sync(429, "TooManyRequests"), false},
		{"500", sync(500, "InternalServerError"), false},
		{"plan refusal", planErrorf("no"), true},
	} {
		if got := isPermanent(tc.err); got != tc.permanent {
			t.Errorf("%s: permanent %v, want %v", tc.name, got, tc.permanent)
		}
		if isTransient(tc.err) == tc.permanent {
			t.Errorf("%s: transient %v, want %v", tc.name, !tc.permanent, !tc.permanent)
		}
	}
}
