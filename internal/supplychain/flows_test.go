package supplychain

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
)

func TestGenerateKeyPair(t *testing.T) {
	if _, err := GenerateKeyPair(""); err == nil || !strings.Contains(err.Error(), "--out PREFIX") {
		t.Fatalf("no prefix: %v", err)
	}
	prefix := filepath.Join(t.TempDir(), "keys", "signing")
	k, err := GenerateKeyPair(prefix)
	if err != nil || k.Private != prefix+".pem" || k.Public != prefix+".pub.pem" || k.KeyID == "" {
		t.Fatalf("GenerateKeyPair = %+v, %v", k, err)
	}
	for p, mode := range map[string]os.FileMode{k.Private: 0o600, filepath.Dir(prefix): 0o700} {
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: mode %v (%v), want %v", p, fi.Mode().Perm(), err, mode)
		}
	}
	if !strings.Contains(k.Text(), "private: "+k.Private) || !strings.Contains(k.Text(), "imgpipe key trust "+k.Public) {
		t.Errorf("Text:\n%s", k.Text())
	}
}

func TestParseParams(t *testing.T) {
	pm, err := ParseParams([]string{"release=bookworm", "x=a=b", "empty="})
	if err != nil || len(pm) != 3 || pm["release"] != "bookworm" || pm["x"] != "a=b" || pm["empty"] != "" {
		t.Fatalf("ParseParams = %v, %v", pm, err)
	}
	if _, err := ParseParams([]string{"novalue"}); err == nil || !strings.Contains(err.Error(), "NAME=VALUE") {
		t.Fatalf("novalue: %v", err)
	}
}

// TestSBOMFileAndDiff: an SBOM recorded from a baseline file per version,
// the diff of two, its rows, and the hints for a missing document.
func TestSBOMFileAndDiff(t *testing.T) {
	ctx := t.Context()
	f := setup(t)
	next := catalog.Ref{Image: "web", Version: "1.5.0"}
	if _, err := f.cat.AddVersion(ctx, catalog.NewVersion{Image: next.Image, Version: next.Version, Provenance: catalog.Provenance{ArtifactSHA256: strings.Repeat("b", 64)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := RecordSBOMFile(ctx, f.cat, f.ref, "", "test"); err == nil || !strings.Contains(err.Error(), "--baseline FILE") {
		t.Fatalf("no baseline: %v", err)
	}
	if _, err := Document(ctx, f.cat, f.ref, catalog.DocSBOM); err == nil || !strings.Contains(err.Error(), "imgpipe sbom record web 1.4.0") {
		t.Fatalf("missing SBOM: %v", err)
	}
	if _, err := Document(ctx, f.cat, f.ref, catalog.DocProvenance); err == nil || !strings.Contains(err.Error(), "imgpipe attest web 1.4.0") {
		t.Fatalf("missing provenance: %v", err)
	}
	for ref, pkgs := range map[catalog.Ref][]drift.Package{
		f.ref: {{Manager: "dpkg", Name: "curl", Version: "7.88-1", Arch: "amd64"}, {Manager: "dpkg", Name: "jq", Version: "1.6", Arch: "amd64"}},
		next:  {{Manager: "dpkg", Name: "curl", Version: "7.88-2", Arch: "amd64"}, {Manager: "dpkg", Name: "bash", Version: "5.2", Arch: "amd64"}},
	} {
		b := &drift.Baseline{Hash: drift.DefaultHash, OS: &drift.OSRelease{ID: "debian", VersionID: "12"}, Packages: pkgs}
		data, err := b.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(t.TempDir(), "baseline.bin")
		os.WriteFile(p, data, 0o644)
		r, err := RecordSBOMFile(ctx, f.cat, ref, p, "test")
		if err != nil || r.Packages != 2 || !strings.HasPrefix(r.Text(ref), "SBOM of "+ref.String()+": 2 packages, ") {
			t.Fatalf("RecordSBOMFile(%s) = %+v, %v", ref, r, err)
		}
		if doc, err := Document(ctx, f.cat, ref, catalog.DocSBOM); err != nil || string(doc) != string(r.Data) {
			t.Fatalf("Document(%s): %v", ref, err)
		}
	}
	d, err := DiffSBOM(ctx, f.cat, f.ref, next)
	if err != nil || len(d.Added) != 1 || len(d.Removed) != 1 || len(d.Changed) != 1 {
		t.Fatalf("DiffSBOM = %+v, %v", d, err)
	}
	// (view.SBOMDiff draws d as a table; its test holds these rows)
	if a, r, c := d.Added[0], d.Removed[0], d.Changed[0]; a.Name != "bash" || a.Version != "5.2" || r.Name != "jq" || r.Version != "1.6" ||
		c.Name != "curl" || c.From != "7.88-1" || c.To != "7.88-2" {
		t.Errorf("DiffSBOM = %+v", d)
	}
	if _, err := DiffSBOM(ctx, f.cat, f.ref, catalog.Ref{Image: "web", Version: "9.9.9"}); err == nil {
		t.Error("a diff with a version without an SBOM succeeded")
	}
}

// TestSignWithKeyAndProvenanceOf: signing from a key file, verifying with
// a key file or the trusted keys, the report's text, and check-deploy's
// provenance check of a gallery version.
func TestSignWithKeyAndProvenanceOf(t *testing.T) {
	ctx := t.Context()
	f := setup(t)
	gv := "/subscriptions/s/.../versions/1.4.0"
	if p, err := ProvenanceOf(ctx, f.cat, gv); err != nil || p != nil || !p.OK() || p.Text() != "" {
		t.Fatalf("no trusted key: %+v, %v", p, err)
	}
	if _, _, err := SignProvenanceWith(ctx, f.cat, f.ref, "", ProvenanceInput{}); err == nil || !strings.Contains(err.Error(), "--key PRIVATE.pem") {
		t.Fatalf("no key: %v", err)
	}
	r, err := VerifyWithKey(ctx, f.cat, f.ref, f.pub, false)
	if err != nil || r.Verified || !strings.HasSuffix(r.Text(f.ref), "web@1.4.0 NOT verified\n") || !strings.Contains(r.Text(f.ref), "FAIL ") {
		t.Fatalf("unsigned: %v\n%s", err, r.Text(f.ref))
	}
	if _, err := Trust(ctx, f.cat, f.pub, "test"); err != nil {
		t.Fatal(err)
	}
	if p, err := ProvenanceOf(ctx, f.cat, gv); err != nil || p == nil || p.OK() || !strings.HasPrefix(p.Text(), "FAIL provenance of web@1.4.0 does not verify: ") {
		t.Fatalf("trusted key, unsigned: %+v, %v", p, err)
	}
	d, files, err := SignProvenanceWith(ctx, f.cat, f.ref, f.priv, ProvenanceInput{ImgpipeVersion: "test"})
	if err != nil || len(files) != 1 || !strings.Contains(SignedText(f.ref, d, files), "written beside the library copy: "+files[0]) {
		t.Fatalf("SignProvenanceWith = %v, %v, %v", d, files, err)
	}
	r, err = VerifyWithKey(ctx, f.cat, f.ref, "", false)
	if err != nil || !r.Verified || !strings.HasSuffix(r.Text(f.ref), "web@1.4.0 verified: signed by "+d.KeyID+" for "+r.Digest+"\n") {
		t.Fatalf("signed: %v\n%s", err, r.Text(f.ref))
	}
	if p, err := ProvenanceOf(ctx, f.cat, gv); err != nil || p == nil || !p.OK() || !strings.HasPrefix(p.Text(), "ok   provenance of web@1.4.0: signed by "+d.KeyID) {
		t.Fatalf("signed: %+v, %v", p, err)
	}
	if p, err := ProvenanceOf(ctx, f.cat, "/subscriptions/s/other"); err != nil || p != nil {
		t.Fatalf("a gallery version the catalog does not know: %+v, %v", p, err)
	}
}
