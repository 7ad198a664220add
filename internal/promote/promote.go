// Package promote moves an image's channels: it checks what the channel
// requires (the pipeline file's channel block, else the catalog's rules;
// prod by default needs a Succeeded gallery version, a passing test of the
// version's exact artifact digest and, once a key is trusted, a verified
// signed provenance), records the move in the catalog, signs it, and
// unstages the version in Azure: a version is published excluded from
// latest and only promotion to prod includes it. Revocation (revoke.go)
// excludes it again.
//
// It never prints: the CLI draws the Result.
package promote

import (
	"context"
	"errors"
	"fmt"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/supplychain"
)

// Prod is the channel whose versions are in the gallery's latest.
const Prod = "prod"

// Stager sets a gallery version's excludeFromLatest wherever it is
// (internal/pipeline's Fleet, through internal/azure).
type Stager interface {
	SetExcludeFromLatest(ctx context.Context, versionID string, exclude bool) error
}

// ErrStaging says the catalog moved but a gallery version's place in latest
// could not be changed; promoting again retries it.
var ErrStaging = errors.New("the gallery version's excludeFromLatest was not changed")

// Request asks to move a channel of an image to a version.
type Request struct {
	Ref     catalog.Ref
	Channel string
	By      string
	// File is the pipeline file whose channel block, when it declares one
	// for the image and channel, replaces the catalog's requirements.
	File *config.File
	// Signer, when set, signs a promotion attestation of the move.
	Signer attest.Signer
	// Stager includes the version's gallery versions in latest on a move
	// to prod. Nil: nothing is changed in Azure and the result says so.
	Stager Stager
}

// NewRequest is the request of imgpipe promote: channel is required; the
// pipeline file (when file is given) and the signing key (when signKey is)
// are loaded.
func NewRequest(ref catalog.Ref, channel, by, file, signKey string) (Request, error) {
	req := Request{Ref: ref, Channel: channel, By: by}
	if channel == "" {
		return req, errors.New("say which channel with --to (e.g. --to prod)")
	}
	var err error
	if file != "" {
		if req.File, err = config.Load(file); err != nil {
			return req, err
		}
	}
	if signKey != "" {
		if req.Signer, err = attest.LoadSigner(signKey); err != nil {
			return req, err
		}
	}
	return req, nil
}

// Result is what a promotion did.
type Result struct {
	catalog.Promotion
	// Rules names where the requirements checked came from.
	Rules string `json:"rules"`
	// Signed: a promotion attestation was stored with the version.
	Signed bool `json:"signed,omitempty"`
	// Included are the gallery versions now in latest (moves to prod).
	Included []string `json:"included_in_latest,omitempty"`
	// Left are gallery versions still excluded from latest, with why.
	Left []string `json:"staging_left,omitempty"`
}

// Rules are the requirements the pipeline file declares for a channel of an
// image (nil when it declares none, or there is no file).
func Rules(f *config.File, image, channel string) *catalog.ChannelRules {
	if f == nil {
		return nil
	}
	ch := f.ChannelOf(image, channel)
	if ch == nil {
		return nil
	}
	r := &catalog.ChannelRules{Source: ch.Source(), Require: []catalog.Requirement{}}
	for _, q := range ch.Requires {
		r.Require = append(r.Require, catalog.Requirement{Kind: catalog.CopyKind(q.Kind), State: q.State})
	}
	return r
}

// Promote moves req.Channel to req.Ref when the version meets what the
// channel requires; the error of a refusal names every unmet requirement
// (a failed test with its failing check and output). Promoting to where the
// channel already points changes nothing in the catalog but still includes
// the version in latest (so a promotion whose Azure step failed can be
// retried).
func Promote(ctx context.Context, cat *catalog.Catalog, req Request) (Result, error) {
	if req.Channel == "" {
		return Result{}, fmt.Errorf("%w: say which channel to move (e.g. prod)", catalog.ErrInvalid)
	}
	if _, err := supplychain.CheckPromotion(ctx, cat, req.Ref, req.Channel); err != nil {
		return Result{}, err
	}
	rules := Rules(req.File, req.Ref.Image, req.Channel)
	res := Result{Rules: "the catalog's requirements of " + req.Channel}
	if rules != nil {
		res.Rules = rules.Source
	}
	p, err := cat.Promote(ctx, catalog.PromoteRequest{Ref: req.Ref, Channel: req.Channel, By: req.By, Rules: rules})
	if err != nil {
		return Result{}, err
	}
	res.Promotion = p
	if req.Signer != nil && !p.NoOp {
		if _, err := supplychain.SignPromotion(ctx, cat, p, req.Signer); err != nil {
			return res, fmt.Errorf("%s promoted, but its promotion attestation was not signed: %w", req.Ref, err)
		}
		res.Signed = true
	}
	if req.Channel != Prod {
		return res, nil
	}
	return res, Unstage(ctx, cat, req.Ref, req.Stager, &res)
}

// Unstage includes the version's gallery versions in latest (it is in prod).
func Unstage(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, s Stager, res *Result) error {
	ids, err := galleryVersions(ctx, cat, ref)
	if err != nil {
		return err
	}
	var errs []error
	for _, id := range ids {
		if s == nil {
			res.Left = append(res.Left, id+": no Azure connection (set AZURE_SUBSCRIPTION_ID or give the pipeline file)")
			errs = append(errs, fmt.Errorf("%s: no Azure connection", id))
			continue
		}
		if err := s.SetExcludeFromLatest(ctx, id, false); err != nil {
			res.Left = append(res.Left, id+": "+err.Error())
			errs = append(errs, err)
			continue
		}
		res.Included = append(res.Included, id)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %s of %s points at %s in the catalog, but %d gallery version(s) are still excluded from latest (promote again to retry): %w",
			ErrStaging, res.Channel, ref.Image, ref.Version, len(errs), errors.Join(errs...))
	}
	return nil
}

// galleryVersions are the version's gallery versions that Azure holds.
func galleryVersions(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) ([]string, error) {
	cps, err := cat.Copies(ctx, ref)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, cp := range cps {
		if cp.Kind != catalog.KindGalleryVersion {
			continue
		}
		switch cp.State {
		case catalog.StateFailed, catalog.StateDeleted, catalog.StateRevoked:
			continue
		}
		out = append(out, cp.ResourceID)
	}
	return out, nil
}
