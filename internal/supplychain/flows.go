package supplychain

// The supply-chain verbs' flows, one call each for the CLI: make a key
// pair, record an SBOM from a baseline file, compare two SBOMs, read a
// stored document, verify with a key or the trusted ones, and the
// provenance check of a gallery version (check-deploy).

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
	"imgpipe/internal/sbom"
	"imgpipe/internal/units"
)

// KeyPair is a signing key made by GenerateKeyPair.
type KeyPair struct {
	KeyID   string `json:"key_id"`
	Private string `json:"private_key"`
	Public  string `json:"public_key"`
}

// GenerateKeyPair makes an ed25519 key pair: prefix.pem (private, mode
// 0600) and prefix.pub.pem, creating prefix's folder (mode 0700) if needed.
func GenerateKeyPair(prefix string) (KeyPair, error) {
	if prefix == "" {
		return KeyPair{}, fmt.Errorf("say where with --out PREFIX (writes PREFIX.pem and PREFIX.pub.pem)")
	}
	if err := os.MkdirAll(filepath.Dir(prefix), 0o700); err != nil {
		return KeyPair{}, err
	}
	k := KeyPair{Private: prefix + ".pem", Public: prefix + ".pub.pem"}
	var err error
	k.KeyID, err = attest.GenerateKey(k.Private, k.Public)
	return k, err
}

// Text says where the key pair is and what to do with each half.
func (k KeyPair) Text() string {
	return fmt.Sprintf("key %s\n  private: %s (keep it secret; mode 0600)\n  public:  %s (give it to verifiers; `imgpipe key trust %s`)\n", k.KeyID, k.Private, k.Public, k.Public)
}

// SBOMRecord is a stored SBOM and how many packages it lists.
type SBOMRecord struct {
	catalog.Document
	Packages int `json:"-"`
}

// Text is one line: the version, its package count, the document's size
// and digest.
func (r SBOMRecord) Text(ref catalog.Ref) string {
	return fmt.Sprintf("SBOM of %s: %d packages, %s (sha256:%s)\n", ref, r.Packages, units.IEC(int64(len(r.Data))), r.SHA256)
}

// RecordSBOMFile makes the SBOM of ref from the baseline file at path (see
// RecordSBOM).
func RecordSBOMFile(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, path, tool string) (SBOMRecord, error) {
	if path == "" {
		return SBOMRecord{}, fmt.Errorf("give the version's baseline with --baseline FILE (written by `imgpipe baseline capture` into etc/imgpipe/baseline.bin of the image)")
	}
	b, err := drift.ReadBaselineFile(path)
	if err != nil {
		return SBOMRecord{}, err
	}
	d, err := RecordSBOM(ctx, cat, ref, b, tool)
	return SBOMRecord{Document: d, Packages: len(b.Packages)}, err
}

// DiffSBOM compares the stored SBOMs of two versions.
func DiffSBOM(ctx context.Context, cat *catalog.Catalog, from, to catalog.Ref) (sbom.Diff, error) {
	var boms [2]*cdx.BOM
	for i, ref := range []catalog.Ref{from, to} {
		d, err := cat.Document(ctx, ref, catalog.DocSBOM)
		if err != nil {
			return sbom.Diff{}, err
		}
		if boms[i], err = sbom.Decode(d.Data); err != nil {
			return sbom.Diff{}, fmt.Errorf("SBOM of %s: %w", ref, err)
		}
	}
	return sbom.Compare(boms[0], boms[1]), nil
}

// ParseParams reads build parameters given as NAME=VALUE.
func ParseParams(params []string) (map[string]string, error) {
	pm := map[string]string{}
	for _, p := range params {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("--param %q: want NAME=VALUE", p)
		}
		pm[k] = v
	}
	return pm, nil
}

// SignProvenanceWith loads the private key at keyPath and signs ref's
// provenance with it (see SignProvenance).
func SignProvenanceWith(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, keyPath string, in ProvenanceInput) (catalog.Document, []string, error) {
	if keyPath == "" {
		return catalog.Document{}, nil, fmt.Errorf("give the signing key with --key PRIVATE.pem (make one with `imgpipe key generate`)")
	}
	s, err := attest.LoadSigner(keyPath)
	if err != nil {
		return catalog.Document{}, nil, err
	}
	return SignProvenance(ctx, cat, ref, s, in)
}

// Document is the stored document of kind (catalog.DocSBOM,
// catalog.DocProvenance) of ref; a missing one says how to make it.
func Document(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, kind string) ([]byte, error) {
	d, err := cat.Document(ctx, ref, kind)
	if err != nil {
		hint := "imgpipe sbom record " + ref.Image + " " + ref.Version + " --baseline FILE"
		if kind == catalog.DocProvenance {
			hint = "imgpipe attest " + ref.Image + " " + ref.Version + " --key KEY"
		}
		return nil, fmt.Errorf("%w (make it with `%s`)", err, hint)
	}
	return d.Data, nil
}

// VerifyWithKey verifies ref (see Verify) with the public key at keyPath,
// or with the keys the catalog trusts when keyPath is "".
func VerifyWithKey(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, keyPath string, requireTest bool) (*Report, error) {
	vs, err := Verifiers(ctx, cat, keyPath)
	if err != nil {
		return nil, err
	}
	return Verify(ctx, cat, ref, VerifyOptions{Verifiers: vs, RequireTest: requireTest})
}

// Text is the report for people: one line per check, then the verdict.
func (r *Report) Text(ref catalog.Ref) string {
	var b strings.Builder
	for _, ch := range r.Checks {
		mark := "ok  "
		if !ch.OK {
			mark = "FAIL"
		}
		fmt.Fprintf(&b, "%s %s: %s\n", mark, ch.Name, ch.Detail)
	}
	if r.Verified {
		fmt.Fprintf(&b, "%s verified: signed by %s for %s\n", ref, r.KeyID, r.Digest)
	} else {
		fmt.Fprintf(&b, "%s NOT verified\n", ref)
	}
	return b.String()
}

// ProvenanceCheck is what check-deploy says of a version's signed
// provenance; nil when the catalog does not know the version or trusts no
// key.
type ProvenanceCheck struct {
	Ref      catalog.Ref `json:"ref"`
	Verified bool        `json:"verified"`
	Report   *Report     `json:"report"`
}

// OK is true unless the provenance was checked and does not verify.
func (p *ProvenanceCheck) OK() bool { return p == nil || p.Verified }

// Text is the check's line ("" when nothing was checked).
func (p *ProvenanceCheck) Text() string {
	if p == nil {
		return ""
	}
	if p.Verified {
		return fmt.Sprintf("ok   provenance of %s: signed by %s for %s\n", p.Ref, p.Report.KeyID, p.Report.Digest)
	}
	return fmt.Sprintf("FAIL provenance of %s does not verify: %s (imgpipe verify %s %s)\n", p.Ref, p.Report.Failed(), p.Ref.Image, p.Ref.Version)
}

// ProvenanceOf verifies the signed provenance of the catalog version the
// gallery version resourceID belongs to, with the keys the catalog trusts:
// nil when the catalog records no such version or trusts no key.
func ProvenanceOf(ctx context.Context, cat *catalog.Catalog, resourceID string) (*ProvenanceCheck, error) {
	copies, err := cat.FindCopies(ctx, catalog.KindGalleryVersion, resourceID)
	if err != nil || len(copies) == 0 {
		return nil, err
	}
	ref := copies[0].Ref
	r, err := verifyTrusted(ctx, cat, ref)
	if err != nil || r == nil {
		return nil, err
	}
	return &ProvenanceCheck{Ref: ref, Verified: r.Verified, Report: r}, nil
}

// SignedText says what attest signed and where it wrote the envelope
// besides the catalog.
func SignedText(ref catalog.Ref, d catalog.Document, files []string) string {
	s := fmt.Sprintf("provenance of %s signed by %s (envelope sha256:%s)\n", ref, d.KeyID, d.SHA256)
	for _, f := range files {
		s += fmt.Sprintf("  written beside the library copy: %s\n", f)
	}
	return s
}
