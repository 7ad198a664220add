package supplychain

import (
	"context"

	"imgpipe/internal/catalog"
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
