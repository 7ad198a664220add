package server

import (
	"net/http"

	"imgpipe/internal/catalog"
)

// documentTypes are the supply-chain documents the API serves, by the name
// in the URL: the newest of each kind, as stored (signed envelopes are served
// byte for byte, so a client can verify them itself).
var documentTypes = map[string]string{
	"sbom":       catalog.DocSBOM,
	"provenance": catalog.DocProvenance,
	"test":       catalog.DocTest,
	"promotion":  catalog.DocPromotion,
}

// apiDocument serves GET /api/images/{image}/versions/{version}/{doc}.
func (s *Server) apiDocument(w http.ResponseWriter, r *http.Request) {
	kind, ok := documentTypes[r.PathValue("doc")]
	if !ok {
		writeError(w, http.StatusNotFound, "no document %q: one of sbom, provenance, test, promotion", r.PathValue("doc"))
		return
	}
	ref := catalog.Ref{Image: r.PathValue("image"), Version: r.PathValue("version")}
	d, err := s.cfg.Catalog.Document(r.Context(), ref, kind)
	if err != nil {
		s.catalogError(w, err)
		return
	}
	w.Header().Set("Content-Type", d.MediaType)
	w.Header().Set("Digest", "sha-256="+d.SHA256)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(d.Data)
}
