// Package attest makes and checks the signed statements of an image version:
// its SLSA provenance, its test results and its promotions, as in-toto
// statements in DSSE envelopes signed with a key the operator controls.
package attest

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"github.com/secure-systems-lab/go-securesystemslib/signerverifier"

	"imgpipe/internal/atomicfile"
)

// Signer signs statements. A key file is one implementation; a KMS or HSM
// key fits the same interface (sign the bytes given, name the key, give its
// public half).
type Signer interface {
	Sign(ctx context.Context, data []byte) ([]byte, error)
	KeyID() (string, error)
	Public() crypto.PublicKey
}

// Verifier checks signatures by one public key.
type Verifier = dsse.Verifier

// maxKeyFile bounds a key file's read: a PEM key is a few hundred bytes.
const maxKeyFile = 64 << 10

// GenerateKey writes a new ed25519 key pair: the private key as PKCS#8 PEM
// readable by its owner only, the public key as SubjectPublicKeyInfo PEM (the
// forms openssl reads). It never replaces an existing file.
func GenerateKey(privatePath, publicPath string) (keyID string, err error) {
	for _, p := range []string{privatePath, publicPath} {
		if _, err := os.Lstat(p); err == nil {
			return "", fmt.Errorf("%s exists: choose another path or remove it first (a key is never overwritten)", p)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", err
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	privPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})
	if err := atomicfile.WriteFile(privatePath, privPEM, 0o600); err != nil {
		return "", err
	}
	if err := atomicfile.WriteFile(publicPath, pubPEM, 0o644); err != nil {
		return "", err
	}
	v, err := verifierFromPEM(pubPEM, publicPath)
	if err != nil {
		return "", err
	}
	return v.KeyID()
}

// LoadSigner reads a PEM private key (ed25519, ECDSA or RSA). It refuses a
// file that others can read, as ssh does: such a key may already be known to
// someone else.
func LoadSigner(path string) (Signer, error) {
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("signing key %s is readable by others (mode %04o): run `chmod 600 %s`", path, fi.Mode().Perm(), path)
		}
	}
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	key, err := signerverifier.LoadKey(data)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w (want a PEM private key, e.g. from `imgpipe key generate`)", path, err)
	}
	if key.KeyVal.Private == "" {
		return nil, fmt.Errorf("signing key %s is a public key: signing needs the private key", path)
	}
	return newSignerVerifier(key, path)
}

// LoadVerifier reads a PEM public key (or a private key, whose public half is
// used).
func LoadVerifier(path string) (Verifier, error) {
	data, err := readKeyFile(path)
	if err != nil {
		return nil, err
	}
	return verifierFromPEM(data, path)
}

// ParseVerifier reads a PEM public key held in memory (e.g. a key the
// catalog trusts).
func ParseVerifier(pemData []byte) (Verifier, error) { return verifierFromPEM(pemData, "(PEM)") }

func verifierFromPEM(data []byte, path string) (dsse.SignerVerifier, error) {
	key, err := signerverifier.LoadKey(data)
	if err != nil {
		return nil, fmt.Errorf("key %s: %w (want a PEM public key)", path, err)
	}
	key.KeyVal.Private = "" // verifying needs only the public half
	return newSignerVerifier(key, path)
}

func newSignerVerifier(key *signerverifier.SSLibKey, path string) (dsse.SignerVerifier, error) {
	switch key.KeyType {
	case signerverifier.ED25519KeyType:
		return signerverifier.NewED25519SignerVerifierFromSSLibKey(key)
	case signerverifier.ECDSAKeyType:
		return signerverifier.NewECDSASignerVerifierFromSSLibKey(key)
	case signerverifier.RSAKeyType:
		return signerverifier.NewRSAPSSSignerVerifierFromSSLibKey(key)
	}
	return nil, fmt.Errorf("key %s: unsupported key type %q", path, key.KeyType)
}

func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("key file %s does not exist: make one with `imgpipe key generate`", path)
		}
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFile+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(data) > maxKeyFile {
		return nil, fmt.Errorf("key file %s is larger than %d bytes: not a PEM key", path, maxKeyFile)
	}
	return data, nil
}
