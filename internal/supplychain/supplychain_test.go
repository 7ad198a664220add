package supplychain

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
	"imgpipe/internal/sbom"
)

type fixture struct {
	cat       *catalog.Catalog
	ref       catalog.Ref
	lib       string // the library copy's file
	priv, pub string
	signer    attest.Signer
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := t.Context()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	artifact := []byte(strings.Repeat("disk bits ", 1000))
	sum := sha256.Sum256(artifact)
	art := hex.EncodeToString(sum[:])
	ref := catalog.Ref{Image: "web", Version: "1.4.0"}
	if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: ref.Image, Version: ref.Version,
		Provenance: catalog.Provenance{ArtifactSHA256: art, PackerVersion: "1.6.6", GitCommit: strings.Repeat("a", 40)}}); err != nil {
		t.Fatal(err)
	}
	ac, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: filepath.Join(dir, "web.vhdx"), Fingerprint: "sha256:" + art, State: catalog.StatePresent})
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "library", "web", "1.4.0", "web.vhdx")
	os.MkdirAll(filepath.Dir(lib), 0o755)
	libBits := []byte(strings.Repeat("vhdx bits ", 1000))
	os.WriteFile(lib, libBits, 0o644)
	ls := sha256.Sum256(libBits)
	if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindOnprem, Location: filepath.Dir(lib), ResourceID: lib,
		Fingerprint: "sha256:" + hex.EncodeToString(ls[:]), State: catalog.StatePresent, ParentID: ac.ID}); err != nil {
		t.Fatal(err)
	}
	bc, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindBlob, Location: "westeurope", ResourceID: "https://acct.blob/vhds/web.vhd", Fingerprint: "md5:x size:1", State: catalog.StateSucceeded, ParentID: ac.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindGalleryVersion, Location: "westeurope", ResourceID: "/subscriptions/s/.../versions/1.4.0", State: catalog.StateSucceeded, ParentID: bc.ID}); err != nil {
		t.Fatal(err)
	}
	priv, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub.pem")
	if _, err := attest.GenerateKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	s, err := attest.LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{cat: cat, ref: ref, lib: lib, priv: priv, pub: pub, signer: s}
}

func (f *fixture) verify(t *testing.T, pub string, requireTest bool) *Report {
	t.Helper()
	vs, err := Verifiers(t.Context(), f.cat, pub)
	if err != nil {
		t.Fatal(err)
	}
	r, err := Verify(t.Context(), f.cat, f.ref, VerifyOptions{Verifiers: vs, RequireTest: requireTest})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSignVerifyTamper(t *testing.T) {
	ctx := t.Context()
	f := setup(t)
	if r := f.verify(t, f.pub, false); r.Verified || !strings.Contains(r.Failed(), "none recorded") {
		t.Fatalf("unsigned version verified: %+v", r)
	}
	if _, _, err := SignProvenance(ctx, f.cat, f.ref, f.signer, ProvenanceInput{ImgpipeVersion: "test", Template: "web.pkr.hcl"}); err != nil {
		t.Fatal(err)
	}
	r := f.verify(t, f.pub, false)
	if !r.Verified {
		t.Fatalf("signed version does not verify: %s", r.Failed())
	}
	if len(r.Checks) != 5 { // provenance, artifact, library copy, blob, gallery version
		t.Errorf("%d checks, want 5: %+v", len(r.Checks), r.Checks)
	}
	if r := f.verify(t, f.pub, true); r.Verified || !strings.Contains(r.Failed(), "no signed test result") {
		t.Errorf("verify with RequireTest and no test: %+v", r.Checks)
	}

	t.Run("another key", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := attest.GenerateKey(filepath.Join(dir, "o.pem"), filepath.Join(dir, "o.pub.pem")); err != nil {
			t.Fatal(err)
		}
		if r := f.verify(t, filepath.Join(dir, "o.pub.pem"), false); r.Verified || !strings.Contains(r.Failed(), "signature does not verify") {
			t.Errorf("another key verified: %+v", r.Checks)
		}
	})
	t.Run("tampered provenance", func(t *testing.T) {
		d, _ := f.cat.Document(ctx, f.ref, catalog.DocProvenance)
		var env dsse.Envelope
		json.Unmarshal(d.Data, &env)
		p, _ := base64.StdEncoding.DecodeString(env.Payload)
		env.Payload = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), "1.6.6", "1.6.7", 1)))
		bad, _ := json.Marshal(env)
		f.cat.PutDocument(ctx, f.ref, catalog.Document{Kind: catalog.DocProvenance, MediaType: EnvelopeMediaType, Data: bad})
		if r := f.verify(t, f.pub, false); r.Verified || !strings.Contains(r.Failed(), "signature does not verify") {
			t.Errorf("tampered provenance verified: %+v", r.Checks)
		}
		env.Signatures = nil
		bad, _ = json.Marshal(env)
		f.cat.PutDocument(ctx, f.ref, catalog.Document{Kind: catalog.DocProvenance, MediaType: EnvelopeMediaType, Data: bad})
		if r := f.verify(t, f.pub, false); r.Verified || !strings.Contains(r.Failed(), "no signature") {
			t.Errorf("unsigned envelope verified: %+v", r.Checks)
		}
		SignProvenance(ctx, f.cat, f.ref, f.signer, ProvenanceInput{})
	})
	t.Run("test for another digest", func(t *testing.T) {
		st, _ := attest.TestStatement(attest.TestResult{Subject: attest.Subject{Image: "web", Version: "1.4.0", SHA256: strings.Repeat("0", 64)},
			Runner: "qemu", Checks: []attest.Check{{Name: "boot", Passed: true}}})
		env, _ := attest.Sign(ctx, f.signer, st)
		f.cat.PutDocument(ctx, f.ref, catalog.Document{Kind: catalog.DocTest, MediaType: EnvelopeMediaType, Data: env})
		if r := f.verify(t, f.pub, true); r.Verified || !strings.Contains(r.Failed(), "another artifact") {
			t.Errorf("a test of another digest verified: %+v", r.Checks)
		}
		if _, err := SignTest(ctx, f.cat, f.ref, f.signer, "qemu", "3", []attest.Check{{Name: "boot", Passed: true}}); err != nil {
			t.Fatal(err)
		}
		if r := f.verify(t, f.pub, true); !r.Verified {
			t.Errorf("a passing signed test does not verify: %s", r.Failed())
		}
		SignTest(ctx, f.cat, f.ref, f.signer, "qemu", "4", []attest.Check{{Name: "boot", Passed: false}})
		if r := f.verify(t, f.pub, true); r.Verified || !strings.Contains(r.Failed(), "FAILED") {
			t.Errorf("a failed test verified: %+v", r.Checks)
		}
		SignTest(ctx, f.cat, f.ref, f.signer, "qemu", "5", []attest.Check{{Name: "boot", Passed: true}})
	})
	t.Run("tampered library copy", func(t *testing.T) {
		os.WriteFile(f.lib, []byte("evil bits"), 0o644)
		if r := f.verify(t, f.pub, false); r.Verified || !strings.Contains(r.Failed(), "the copy was changed") {
			t.Errorf("tampered library copy verified: %+v", r.Checks)
		}
	})
}

func TestPromotionNeedsVerifiedProvenance(t *testing.T) {
	ctx := t.Context()
	f := setup(t)
	if r, err := CheckPromotion(ctx, f.cat, f.ref, "prod"); err != nil || r != nil {
		t.Fatalf("no trusted key: promotion checked anyway (%v, %v)", r, err)
	}
	if _, err := Trust(ctx, f.cat, f.priv, "ops"); err == nil {
		t.Error("a private key was trusted into the catalog")
	}
	if _, err := Trust(ctx, f.cat, f.pub, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := CheckPromotion(ctx, f.cat, f.ref, "prod"); err == nil || !strings.Contains(err.Error(), "provenance") {
		t.Fatalf("unsigned version allowed into prod: %v", err)
	}
	if _, err := CheckPromotion(ctx, f.cat, f.ref, "test"); err != nil {
		t.Errorf("test channel needs no provenance: %v", err)
	}
	SignProvenance(ctx, f.cat, f.ref, f.signer, ProvenanceInput{})
	if _, err := CheckPromotion(ctx, f.cat, f.ref, "prod"); err != nil {
		t.Fatalf("signed version refused: %v", err)
	}
}

func TestRecordSBOM(t *testing.T) {
	f := setup(t)
	b := &drift.Baseline{OS: &drift.OSRelease{ID: "debian", VersionID: "12"}, Packages: []drift.Package{{Manager: "dpkg", Name: "curl", Version: "7.88", Arch: "amd64"}}}
	if _, err := RecordSBOM(t.Context(), f.cat, f.ref, b, "test"); err != nil {
		t.Fatal(err)
	}
	d, err := f.cat.Document(t.Context(), f.ref, catalog.DocSBOM)
	if err != nil {
		t.Fatal(err)
	}
	bom, err := sbom.Decode(d.Data)
	if err != nil || len(*bom.Components) != 1 || (*bom.Metadata.Component.Hashes)[0].Value == "" {
		t.Fatalf("stored SBOM = %+v, %v", bom, err)
	}
}

func TestGalleryTags(t *testing.T) {
	ctx := t.Context()
	f := setup(t)
	if tags, err := GalleryTags(ctx, f.cat, f.ref); err != nil || tags != nil {
		t.Fatalf("no documents: %v, %v", tags, err)
	}
	if tags, err := GalleryTags(ctx, f.cat, catalog.Ref{Image: "web", Version: "9.9.9"}); err != nil || tags != nil {
		t.Fatalf("a version not in the catalog yet: %v, %v", tags, err)
	}
	d, _, err := SignProvenance(ctx, f.cat, f.ref, f.signer, ProvenanceInput{})
	if err != nil {
		t.Fatal(err)
	}
	tags, err := GalleryTags(ctx, f.cat, f.ref)
	if err != nil || tags[TagProvenance] != d.SHA256 || tags[TagProvenanceKey] != d.KeyID || tags[TagDocuments] != "/api/images/web/versions/1.4.0/" {
		t.Errorf("tags = %v, %v", tags, err)
	}
	for k, v := range tags {
		if len(k) > 512 || len(v) > 256 { // Azure's tag name and value limits
			t.Errorf("tag %s=%s is longer than Azure allows", k, v)
		}
	}
}
