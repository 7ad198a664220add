package azure

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
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
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Explain(tt.err) + "\n"
			path := filepath.Join("testdata", "explain", tt.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestExplainGolden -update)", err)
			}
			if got != string(want) {
				t.Errorf("got:\n%s\nwant:\n%s", got, want)
			}
			if bytes.Contains([]byte(got), []byte("SECRET")) {
				t.Error("a SAS signature was rendered")
			}
		})
	}
}
