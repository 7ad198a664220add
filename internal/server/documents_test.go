package server

import (
	"io"
	"net/http"
	"path/filepath"
	"testing"

	"imgpipe/internal/catalog"
)

func TestDocumentAPI(t *testing.T) {
	f := newFixture(t, backend{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "catalog.db") }}, Config{})
	seedCatalog(t, f.cat)
	ref := catalog.Ref{Image: "web", Version: "1.2.0"}
	if _, err := f.cat.PutDocument(t.Context(), ref, catalog.Document{Kind: catalog.DocSBOM, MediaType: "application/vnd.cyclonedx+json", Data: []byte(`{"bomFormat":"CycloneDX"}`)}); err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string, string) {
		resp, err := f.ts.Client().Get(f.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	if code, ct, body := get("/api/images/web/versions/1.2.0/sbom"); code != http.StatusOK || ct != "application/vnd.cyclonedx+json" || body != `{"bomFormat":"CycloneDX"}` {
		t.Errorf("sbom: %d %s %s", code, ct, body)
	}
	for _, p := range []string{"/api/images/web/versions/1.2.0/provenance", "/api/images/web/versions/9.9.9/sbom", "/api/images/web/versions/1.2.0/secrets"} {
		if code, _, body := get(p); code != http.StatusNotFound {
			t.Errorf("%s: %d %s, want 404", p, code, body)
		}
	}
}
