package catalog

import (
	"errors"
	"testing"

	"imgpipe/internal/testenv"
)

func TestDocumentsSQLite(t *testing.T) { testDocuments(t, sqliteBackend()) }

func TestDocumentsPostgres(t *testing.T) {
	pg := testenv.StartPostgres(t)
	testDocuments(t, backend{name: "postgres", newLocation: func(t *testing.T) string { return pg.NewDatabase(t) }})
}

func testDocuments(t *testing.T, b backend) {
	ctx := t.Context()
	c := openAt(t, b.newLocation(t))
	ref := Ref{Image: "web", Version: "1.4.0"}
	if _, err := c.AddVersion(ctx, NewVersion{Image: ref.Image, Version: ref.Version}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Document(ctx, ref, DocProvenance); !errors.Is(err, ErrNotFound) {
		t.Fatalf("no provenance yet: %v, want ErrNotFound", err)
	}
	put := func(kind, data string) {
		t.Helper()
		if _, err := c.PutDocument(ctx, ref, Document{Kind: kind, MediaType: "application/json", KeyID: "k1", Data: []byte(data)}); err != nil {
			t.Fatal(err)
		}
	}
	put(DocProvenance, "p1")
	put(DocProvenance, "p2") // replaces
	put(DocTest, "t1")
	put(DocTest, "t2") // accumulates
	put(DocSBOM, "s1")
	if d, err := c.Document(ctx, ref, DocProvenance); err != nil || string(d.Data) != "p2" || d.KeyID != "k1" {
		t.Errorf("provenance = %q %q, %v; want p2 by k1", d.Data, d.KeyID, err)
	}
	if ds, _ := c.Documents(ctx, ref, DocProvenance); len(ds) != 1 {
		t.Errorf("%d provenance documents, want 1 (a new one replaces the old)", len(ds))
	}
	if ds, _ := c.Documents(ctx, ref, DocTest); len(ds) != 2 || string(ds[1].Data) != "t2" {
		t.Errorf("test documents = %v, want t1, t2", ds)
	}
	if ds, _ := c.Documents(ctx, ref, ""); len(ds) != 4 {
		t.Errorf("%d documents in all, want 4", len(ds))
	}
	if _, err := c.PutDocument(ctx, ref, Document{Kind: "bogus", MediaType: "x", Data: []byte("x")}); !errors.Is(err, ErrInvalid) {
		t.Errorf("unknown kind: %v", err)
	}
	if _, err := c.PutDocument(ctx, Ref{Image: "web", Version: "9.9.9"}, Document{Kind: DocSBOM, MediaType: "x", Data: []byte("x")}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown version: %v", err)
	}
	// A document changed behind the catalog's back is refused on read.
	if _, err := c.DB().ExecContext(ctx, c.q("UPDATE version_documents SET data = ? WHERE kind = ?"), []byte("evil"), DocSBOM); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Document(ctx, ref, DocSBOM); err == nil {
		t.Error("a corrupted document was returned")
	}

	if err := c.TrustKey(ctx, TrustedKey{KeyID: "k1", PublicPEM: "PEM", AddedBy: "ops"}); err != nil {
		t.Fatal(err)
	}
	if err := c.TrustKey(ctx, TrustedKey{KeyID: "k1", PublicPEM: "PEM"}); err != nil {
		t.Fatalf("trusting a key twice: %v", err)
	}
	if ks, err := c.TrustedKeys(ctx); err != nil || len(ks) != 1 || ks[0].AddedBy != "ops" {
		t.Errorf("trusted keys = %+v, %v", ks, err)
	}
}
