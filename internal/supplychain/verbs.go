package supplychain

// What the supply-chain verbs ask: attest signs, sbom diff compares two
// versions named on the command line.

import (
	"context"

	"imgpipe/internal/catalog"
	"imgpipe/internal/sbom"
)

// Attestation is what imgpipe attest signed and where it wrote it.
type Attestation struct {
	Document catalog.Document `json:"document"`
	// Files are the provenance.dsse.json copies beside the library copies.
	Files []string `json:"files"`
}

// Attest signs the provenance of ref with the private key at keyPath
// (SignProvenanceWith), params being the --param NAME=VALUE pairs to record.
func Attest(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, keyPath string, params []string, in ProvenanceInput) (*Attestation, error) {
	pm, err := ParseParams(params)
	if err != nil {
		return nil, err
	}
	in.Parameters = pm
	d, files, err := SignProvenanceWith(ctx, cat, ref, keyPath, in)
	if err != nil {
		return nil, err
	}
	return &Attestation{Document: d, Files: files}, nil
}

// Text is the attestation for people.
func (a *Attestation) Text(ref catalog.Ref) string { return SignedText(ref, a.Document, a.Files) }

// DiffVersions is DiffSBOM between versions from and to of image, as sbom
// diff names them (each checked like any version argument).
func DiffVersions(ctx context.Context, cat *catalog.Catalog, image, from, to string) (sbom.Diff, error) {
	refs := []catalog.Ref{{Image: image, Version: from}, {Image: image, Version: to}}
	if err := catalog.ValidateImageName(image); err != nil {
		return sbom.Diff{}, err
	}
	for _, r := range refs {
		if _, err := catalog.ParseVersion(r.Version); err != nil {
			return sbom.Diff{}, err
		}
	}
	return DiffSBOM(ctx, cat, refs[0], refs[1])
}
