// Package supplychain records and checks what can be said of an image
// version beyond the catalog's own rows: its SBOM and its signed provenance,
// test and promotion attestations, verified against the version's copies.
// It joins the catalog (where the documents live) with sbom and attest (what
// they say); it never talks to Azure.
package supplychain

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	ita "github.com/in-toto/attestation/go/v1"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
	"imgpipe/internal/sbom"
)

// EnvelopeMediaType is how signed statements are stored.
const EnvelopeMediaType = "application/vnd.dsse.envelope.v1+json"

// subject is the attested artifact of a version: its build artifact's SHA-256.
func subject(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (catalog.Version, attest.Subject, error) {
	v, err := cat.Version(ctx, ref)
	if err != nil {
		return v, attest.Subject{}, err
	}
	sum := strings.TrimPrefix(v.ArtifactSHA256, "sha256:")
	if len(sum) != 64 {
		return v, attest.Subject{}, fmt.Errorf("%s has no artifact SHA-256 in the catalog: record its build first (imgpipe build, or publish)", ref)
	}
	return v, attest.Subject{Image: ref.Image, Version: ref.Version, SHA256: sum}, nil
}

// RecordSBOM makes the SBOM of a version from the baseline captured in its
// image and stores it with the version.
func RecordSBOM(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, b *drift.Baseline, tool string) (catalog.Document, error) {
	_, subj, err := subject(ctx, cat, ref)
	if err != nil {
		return catalog.Document{}, err
	}
	bom, err := sbom.FromBaseline(b, sbom.Subject{Image: ref.Image, Version: ref.Version, Digest: "sha256:" + subj.SHA256, Tool: tool})
	if err != nil {
		return catalog.Document{}, err
	}
	data, err := sbom.Encode(bom)
	if err != nil {
		return catalog.Document{}, err
	}
	return cat.PutDocument(ctx, ref, catalog.Document{Kind: catalog.DocSBOM, MediaType: sbom.MediaType, Data: data})
}

// ProvenanceInput is what the catalog does not know of a build.
type ProvenanceInput struct {
	ImgpipeVersion string
	Template       string
	Parameters     map[string]string
}

// ProvenanceFile is the name of the envelope written beside each library
// copy, so a Hyper-V host reading the share can verify what it boots.
const ProvenanceFile = "provenance.dsse.json"

// SignProvenance signs the provenance of a version from what the catalog
// recorded of its build, stores the envelope with the version, and writes it
// beside every present library copy. It returns the files written.
func SignProvenance(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, s attest.Signer, in ProvenanceInput) (catalog.Document, []string, error) {
	v, subj, err := subject(ctx, cat, ref)
	if err != nil {
		return catalog.Document{}, nil, err
	}
	b := attest.Build{Subject: subj, Template: in.Template, Parameters: in.Parameters,
		GitCommit: v.GitCommit, TemplateHash: v.TemplateHash, PackerVersion: v.PackerVersion,
		ImgpipeVersion: in.ImgpipeVersion, BuildID: v.BuildID, StartedOn: v.BuildTime, FinishedOn: v.BuildTime}
	if b.Template == "" {
		b.Template = "packer-template"
	}
	if v.Parent != nil {
		b.Parent = v.Parent.String()
	}
	st, err := attest.Provenance(b)
	if err != nil {
		return catalog.Document{}, nil, err
	}
	d, env, err := store(ctx, cat, ref, catalog.DocProvenance, s, st)
	if err != nil {
		return d, nil, err
	}
	copies, err := cat.Copies(ctx, ref)
	if err != nil {
		return d, nil, err
	}
	var written []string
	for _, c := range copies {
		if c.Kind != catalog.KindOnprem || c.State != catalog.StatePresent {
			continue
		}
		p := filepath.Join(filepath.Dir(c.ResourceID), ProvenanceFile)
		if err := atomicfile.WriteFile(p, env, 0o644); err != nil {
			return d, written, fmt.Errorf("provenance signed and stored in the catalog, but not written beside the library copy: %w", err)
		}
		written = append(written, p)
	}
	return d, written, nil
}

// SignTest signs a test result of a version and stores it.
func SignTest(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, s attest.Signer, runner, runID string, checks []attest.Check) (catalog.Document, error) {
	_, subj, err := subject(ctx, cat, ref)
	if err != nil {
		return catalog.Document{}, err
	}
	st, err := attest.TestStatement(attest.TestResult{Subject: subj, Runner: runner, RunID: runID, Checks: checks})
	if err != nil {
		return catalog.Document{}, err
	}
	d, _, err := store(ctx, cat, ref, catalog.DocTest, s, st)
	return d, err
}

// SignPromotion signs a channel promotion of a version and stores it.
func SignPromotion(ctx context.Context, cat *catalog.Catalog, p catalog.Promotion, s attest.Signer) (catalog.Document, error) {
	ref := catalog.Ref{Image: p.Image, Version: p.To}
	_, subj, err := subject(ctx, cat, ref)
	if err != nil {
		return catalog.Document{}, err
	}
	st, err := attest.PromotionStatement(attest.Promotion{Subject: subj, Channel: p.Channel, From: p.From, By: p.By, At: p.At})
	if err != nil {
		return catalog.Document{}, err
	}
	d, _, err := store(ctx, cat, ref, catalog.DocPromotion, s, st)
	return d, err
}

func store(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, kind string, s attest.Signer, st *ita.Statement) (catalog.Document, []byte, error) {
	env, err := attest.Sign(ctx, s, st)
	if err != nil {
		return catalog.Document{}, nil, err
	}
	kid, _ := s.KeyID()
	d, err := cat.PutDocument(ctx, ref, catalog.Document{Kind: kind, MediaType: EnvelopeMediaType, KeyID: kid, Data: env})
	return d, env, err
}

// ErrNotVerified is what Verify's negative answers wrap.
var ErrNotVerified = errors.New("not verified")

// Tags a gallery version carries that point at its supply-chain documents:
// the SHA-256 of each envelope or document, the key that signed the
// provenance, and where imgpipe serve serves them (a path under the fleet
// server's API).
const (
	TagProvenance    = "imgpipe.provenance.sha256"
	TagProvenanceKey = "imgpipe.provenance.key"
	TagSBOM          = "imgpipe.sbom.sha256"
	TagDocuments     = "imgpipe.documents"
)

// GalleryTags returns the tags that name a version's SBOM and provenance, or
// none when the catalog holds neither (or not the version yet).
func GalleryTags(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (map[string]string, error) {
	docs, err := cat.Documents(ctx, ref, "")
	if errors.Is(err, catalog.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	tags := map[string]string{}
	for _, d := range docs { // oldest first: the newest of a kind wins
		switch d.Kind {
		case catalog.DocProvenance:
			tags[TagProvenance], tags[TagProvenanceKey] = d.SHA256, d.KeyID
		case catalog.DocSBOM:
			tags[TagSBOM] = d.SHA256
		}
	}
	if len(tags) == 0 {
		return nil, nil
	}
	tags[TagDocuments] = "/api/images/" + ref.Image + "/versions/" + ref.Version + "/"
	return tags, nil
}
