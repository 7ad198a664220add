package supplychain

import (
	"context"
	"fmt"
	"os"
	"strings"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
)

// Trust records the public key at path as one whose signatures the catalog
// requires for promotion to prod.
func Trust(ctx context.Context, cat *catalog.Catalog, path, by string) (catalog.TrustedKey, error) {
	v, err := attest.LoadVerifier(path)
	if err != nil {
		return catalog.TrustedKey{}, err
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return catalog.TrustedKey{}, err
	}
	if strings.Contains(string(pem), "PRIVATE KEY") {
		return catalog.TrustedKey{}, fmt.Errorf("%s is a private key: trust the public key (the .pub.pem beside it); the private key never goes into the catalog", path)
	}
	kid, err := v.KeyID()
	if err != nil {
		return catalog.TrustedKey{}, err
	}
	k := catalog.TrustedKey{KeyID: kid, PublicPEM: string(pem), AddedBy: by}
	return k, cat.TrustKey(ctx, k)
}

// Verifiers returns the key at path when one is given, else every key the
// catalog trusts (none: an empty list).
func Verifiers(ctx context.Context, cat *catalog.Catalog, path string) ([]attest.Verifier, error) {
	if path != "" {
		v, err := attest.LoadVerifier(path)
		if err != nil {
			return nil, err
		}
		return []attest.Verifier{v}, nil
	}
	keys, err := cat.TrustedKeys(ctx)
	if err != nil {
		return nil, err
	}
	var out []attest.Verifier
	for _, k := range keys {
		v, err := attest.ParseVerifier([]byte(k.PublicPEM))
		if err != nil {
			return nil, fmt.Errorf("trusted key %s in the catalog: %w", k.KeyID, err)
		}
		out = append(out, v)
	}
	return out, nil
}

// CheckPromotion refuses to move prod to a version whose provenance does not
// verify, once the catalog trusts a key; with no trusted key it allows it
// (signing is opt-in) and says nothing.
func CheckPromotion(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, channel string) (*Report, error) {
	if channel != "prod" {
		return nil, nil
	}
	r, err := verifyTrusted(ctx, cat, ref)
	if err != nil || r == nil {
		return nil, err
	}
	if !r.Verified {
		return r, fmt.Errorf("%w: %s cannot go to prod: the catalog trusts a signing key and its provenance does not verify: %s", ErrNotVerified, ref, r.Failed())
	}
	return r, nil
}

// verifyTrusted verifies ref with the keys the catalog trusts; nil when it
// trusts none (signing is opt-in).
func verifyTrusted(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (*Report, error) {
	vs, err := Verifiers(ctx, cat, "")
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	return Verify(ctx, cat, ref, VerifyOptions{Verifiers: vs})
}
