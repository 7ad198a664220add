package supplychain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/onprem"
)

// Check is one thing Verify looked at.
type Check struct {
	Name   string `json:"name"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Report is the outcome of Verify: every check, and whether all passed.
type Report struct {
	Ref      catalog.Ref `json:"ref"`
	Digest   string      `json:"digest"`
	KeyID    string      `json:"key_id,omitempty"`
	Checks   []Check     `json:"checks"`
	Verified bool        `json:"verified"`
}

func (r *Report) add(name string, ok bool, format string, a ...any) {
	r.Checks = append(r.Checks, Check{Name: name, OK: ok, Detail: fmt.Sprintf(format, a...)})
}

// Failed lists the checks that did not pass, for an error message.
func (r *Report) Failed() string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK {
			out = append(out, c.Name+": "+c.Detail)
		}
	}
	return strings.Join(out, "; ")
}

// VerifyOptions say what Verify trusts and needs.
type VerifyOptions struct {
	// Verifiers are the keys whose signatures count (see Verifiers).
	Verifiers []attest.Verifier
	// RequireTest fails the verification when no signed, passing test
	// result for the same digest exists.
	RequireTest bool
}

// Verify checks that a version's signed provenance is signed by a trusted
// key and names the version's artifact digest; that every copy of the
// version in the catalog holds those bits (library copies are re-read); and
// that its test attestation, if any (required with RequireTest), is signed
// and passed for the same digest. It returns the report; an error only when
// the check itself could not run.
func Verify(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, o VerifyOptions) (*Report, error) {
	if len(o.Verifiers) == 0 {
		return nil, errors.New("no key to verify with: give --key PUB.pem or trust one with `imgpipe key trust`")
	}
	_, subj, err := subject(ctx, cat, ref)
	if err != nil {
		return nil, err
	}
	r := &Report{Ref: ref, Digest: "sha256:" + subj.SHA256}
	prov, err := cat.Document(ctx, ref, catalog.DocProvenance)
	switch {
	case errors.Is(err, catalog.ErrNotFound):
		r.add("provenance", false, "none recorded: sign it with `imgpipe attest %s %s --key KEY`", ref.Image, ref.Version)
	case err != nil:
		return nil, err
	default:
		v, err := verifyAny(ctx, o.Verifiers, prov.Data, &subj)
		if err != nil {
			r.add("provenance", false, "%v", err)
		} else {
			r.KeyID = v.KeyID
			r.add("provenance", true, "signed by %s for sha256:%s", v.KeyID, subj.SHA256)
		}
	}
	copies, err := cat.Copies(ctx, ref)
	if err != nil {
		return nil, err
	}
	byID := map[int64]catalog.Copy{}
	for _, c := range copies {
		byID[c.ID] = c
	}
	for _, c := range copies {
		if c.State == catalog.StateDeleted {
			continue
		}
		switch c.Kind {
		case catalog.KindArtifact:
			checkFingerprint(r, "artifact "+c.ResourceID, c.Fingerprint, subj.SHA256)
		case catalog.KindOnprem:
			checkLibraryCopy(ctx, r, c)
		case catalog.KindBlob, catalog.KindManagedDisk, catalog.KindManagedImage, catalog.KindGalleryVersion, catalog.KindRegion:
			checkDescends(r, c, byID, subj.SHA256)
		}
	}
	tests, err := cat.Documents(ctx, ref, catalog.DocTest)
	if err != nil {
		return nil, err
	}
	switch {
	case len(tests) > 0:
		last := tests[len(tests)-1]
		v, err := verifyAny(ctx, o.Verifiers, last.Data, &subj)
		switch {
		case err != nil:
			r.add("test", false, "%v", err)
		case attest.PredicateField(v.Statement, "result") != "PASSED":
			r.add("test", false, "the newest signed test result is %s", attest.PredicateField(v.Statement, "result"))
		default:
			r.add("test", true, "passed, signed by %s for the same digest", v.KeyID)
		}
	case o.RequireTest:
		r.add("test", false, "no signed test result: run `imgpipe test %s %s` with a signing key", ref.Image, ref.Version)
	}
	r.Verified = true
	for _, c := range r.Checks {
		r.Verified = r.Verified && c.OK
	}
	return r, nil
}

func verifyAny(ctx context.Context, vs []attest.Verifier, env []byte, subj *attest.Subject) (*attest.Verified, error) {
	var errs []error
	for _, v := range vs {
		got, err := attest.Verify(ctx, v, env, subj)
		if err == nil {
			return got, nil
		}
		if errors.Is(err, attest.ErrWrongSubject) {
			return nil, err // the signature was good: the statement is about other bits
		}
		errs = append(errs, err)
	}
	return nil, errors.Join(errs...)
}

// isSHA256 says whether a copy's fingerprint is the SHA-256 want (hex).
func isSHA256(fp, want string) bool { return fp == "sha256:"+want }

func checkFingerprint(r *Report, name, fp, want string) {
	if isSHA256(fp, want) {
		r.add(name, true, "sha256 matches")
		return
	}
	r.add(name, false, "fingerprint %s is not the signed sha256:%s", fp, want)
}

// checkLibraryCopy re-reads a library copy: its bits must be the ones the
// catalog recorded, and it must have been made from the signed artifact.
func checkLibraryCopy(ctx context.Context, r *Report, c catalog.Copy) {
	name := "library copy " + c.ResourceID
	if _, err := os.Stat(c.ResourceID); err != nil {
		r.add(name, false, "cannot read it: %v", err)
		return
	}
	sum, _, err := onprem.HashFile(ctx, c.ResourceID, nil)
	if err != nil {
		r.add(name, false, "cannot read it: %v", err)
		return
	}
	if !isSHA256(c.Fingerprint, sum) {
		r.add(name, false, "its content (sha256:%s) is not what was published (%s): the copy was changed; publish it again", sum, c.Fingerprint)
		return
	}
	if c.ParentID == 0 {
		r.add(name, false, "the catalog does not say which artifact it was made from")
		return
	}
	r.add(name, true, "content unchanged since publish")
}

// checkDescends follows an Azure copy's parents to the artifact it was made
// from, which must be the signed one.
func checkDescends(r *Report, c catalog.Copy, byID map[int64]catalog.Copy, want string) {
	name := string(c.Kind) + " " + c.ResourceID
	if c.Kind == catalog.KindRegion {
		name = "region " + c.Location
	}
	seen := map[int64]bool{}
	for p := c; ; {
		if p.Kind == catalog.KindArtifact {
			if isSHA256(p.Fingerprint, want) {
				r.add(name, true, "made from the signed artifact")
			} else {
				r.add(name, false, "made from %s, not the signed sha256:%s", p.Fingerprint, want)
			}
			return
		}
		next, ok := byID[p.ParentID]
		if p.ParentID == 0 || !ok || seen[p.ParentID] {
			r.add(name, false, "the catalog does not trace it back to the signed artifact")
			return
		}
		seen[p.ParentID] = true
		p = next
	}
}
