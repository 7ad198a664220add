package attest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/secure-systems-lab/go-securesystemslib/dsse"

	"imgpipe/internal/testenv"
)

var subject = Subject{Image: "web", Version: "1.4.0", SHA256: strings.Repeat("ab", 32)}

func keys(t *testing.T) (priv, pub string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub = filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub.pem")
	if _, err := GenerateKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	return priv, pub
}

func signed(t *testing.T, priv string) []byte {
	t.Helper()
	s, err := LoadSigner(priv)
	if err != nil {
		t.Fatal(err)
	}
	st, err := Provenance(Build{Subject: subject, Template: "web.pkr.hcl", Parameters: map[string]string{"release": "bookworm"},
		GitCommit: strings.Repeat("1", 40), TemplateHash: "sha256:" + strings.Repeat("cd", 32),
		ImgpipeVersion: "0.3.0", PackerVersion: "1.6.6", BuildID: "run-7",
		StartedOn: time.Unix(1700000000, 0), FinishedOn: time.Unix(1700000600, 0)})
	if err != nil {
		t.Fatal(err)
	}
	env, err := Sign(t.Context(), s, st)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

func TestSignVerify(t *testing.T) {
	priv, pub := keys(t)
	env := signed(t, priv)
	v, err := LoadVerifier(pub)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Verify(t.Context(), v, env, &subject)
	if err != nil {
		t.Fatal(err)
	}
	if got.Statement.GetPredicateType() != PredicateProvenance {
		t.Errorf("predicate type %q", got.Statement.GetPredicateType())
	}
	raw, _ := json.Marshal(got.Statement.GetPredicate().AsMap())
	for _, want := range []string{`"buildType":"` + BuildType + `"`, `"packer":"1.6.6"`, `"gitCommit":"1111`, `"invocationId":"run-7"`, `"release":"bookworm"`} {
		if !strings.Contains(string(raw), want) {
			t.Errorf("provenance lacks %s:\n%s", want, raw)
		}
	}
}

// TestVerifyRefuses: every way an envelope can be wrong is refused, each with
// what is wrong.
func TestVerifyRefuses(t *testing.T) {
	priv, pub := keys(t)
	otherPriv, otherPub := keys(t)
	env := signed(t, priv)
	v, _ := LoadVerifier(pub)
	other, _ := LoadVerifier(otherPub)
	var e dsse.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(*dsse.Envelope)) []byte {
		c := e
		c.Signatures = append([]dsse.Signature(nil), e.Signatures...)
		f(&c)
		b, _ := json.Marshal(c)
		return b
	}
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	tampered := strings.Replace(string(payload), strings.Repeat("ab", 32), strings.Repeat("ef", 32), 1)
	sig, _ := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
	sig[0] ^= 1
	for name, tc := range map[string]struct {
		env  []byte
		v    Verifier
		want error
		msg  string
	}{
		"payload changed":  {mutate(func(c *dsse.Envelope) { c.Payload = base64.StdEncoding.EncodeToString([]byte(tampered)) }), v, ErrBadSignature, "signature does not verify"},
		"signature forged": {mutate(func(c *dsse.Envelope) { c.Signatures[0].Sig = base64.StdEncoding.EncodeToString(sig) }), v, ErrBadSignature, ""},
		"no signature":     {mutate(func(c *dsse.Envelope) { c.Signatures = nil }), v, ErrBadSignature, "no signature"},
		"another key":      {env, other, ErrBadSignature, ""},
		"other key signed": {signed(t, otherPriv), v, ErrBadSignature, ""},
		"payload type":     {mutate(func(c *dsse.Envelope) { c.PayloadType = "text/plain" }), v, nil, "payload type"},
		"not json":         {[]byte("garbage"), v, nil, "not a DSSE envelope"},
	} {
		_, err := Verify(t.Context(), tc.v, tc.env, &subject)
		if err == nil {
			t.Errorf("%s: accepted", name)
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: error %v, want %v", name, err, tc.want)
		}
		if tc.msg != "" && !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: error %q does not say %q", name, err, tc.msg)
		}
	}
	wrong := subject
	wrong.SHA256 = strings.Repeat("00", 32)
	if _, err := Verify(t.Context(), v, env, &wrong); !errors.Is(err, ErrWrongSubject) {
		t.Errorf("statement for another digest: %v, want ErrWrongSubject", err)
	}
}

func TestKeyFiles(t *testing.T) {
	priv, pub := keys(t)
	if _, err := GenerateKey(priv, pub+".x"); err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("GenerateKey over an existing key: %v", err)
	}
	if err := os.Chmod(priv, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSigner(priv); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("world-readable private key: %v", err)
	}
	os.Chmod(priv, 0o600)
	if _, err := LoadSigner(pub); err == nil {
		t.Error("a public key was taken for signing")
	}
	if _, err := LoadVerifier(filepath.Join(t.TempDir(), "none.pem")); err == nil || !strings.Contains(err.Error(), "imgpipe key generate") {
		t.Errorf("missing key: %v", err)
	}
}

// TestOpenSSLVerifies: the signature checks with a standard tool, as the
// README tells operators: openssl over DSSE's pre-authentication encoding.
func TestOpenSSLVerifies(t *testing.T) {
	openssl := testenv.RequireTool(t, "openssl")
	priv, pub := keys(t)
	env := signed(t, priv)
	var e dsse.Envelope
	json.Unmarshal(env, &e)
	payload, _ := base64.StdEncoding.DecodeString(e.Payload)
	sig, _ := base64.StdEncoding.DecodeString(e.Signatures[0].Sig)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "pae"), dsse.PAE(e.PayloadType, payload), 0o644)
	os.WriteFile(filepath.Join(dir, "sig"), sig, 0o644)
	out, err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
		"-in", filepath.Join(dir, "pae"), "-sigfile", filepath.Join(dir, "sig")).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Signature Verified Successfully") {
		t.Fatalf("openssl: %v\n%s", err, out)
	}
	sig[1] ^= 1
	os.WriteFile(filepath.Join(dir, "sig"), sig, 0o644)
	if err := exec.Command(openssl, "pkeyutl", "-verify", "-pubin", "-inkey", pub, "-rawin",
		"-in", filepath.Join(dir, "pae"), "-sigfile", filepath.Join(dir, "sig")).Run(); err == nil {
		t.Fatal("openssl verified a changed signature")
	}
}

func TestTestAndPromotionStatements(t *testing.T) {
	st, err := TestStatement(TestResult{Subject: subject, Runner: "qemu", RunID: "9", Checks: []Check{{"boot", true}, {"curl", false}}})
	if err != nil {
		t.Fatal(err)
	}
	if PredicateField(st, "result") != "FAILED" {
		t.Errorf("a failed check gave %q", PredicateField(st, "result"))
	}
	st, _ = TestStatement(TestResult{Subject: subject, Runner: "qemu", Checks: []Check{{"boot", true}}})
	if PredicateField(st, "result") != "PASSED" {
		t.Errorf("all checks passed gave %q", PredicateField(st, "result"))
	}
	if _, err := TestStatement(TestResult{Subject: subject}); err == nil {
		t.Error("a test result with no checks was accepted")
	}
	if _, err := PromotionStatement(Promotion{Subject: subject, Channel: "prod", By: "ci", At: time.Now()}); err != nil {
		t.Error(err)
	}
	if _, err := PromotionStatement(Promotion{Subject: Subject{Image: "web"}, Channel: "prod"}); err == nil {
		t.Error("a subject without digest was accepted")
	}
}
