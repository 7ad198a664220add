package attest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	ita "github.com/in-toto/attestation/go/v1"
	"github.com/secure-systems-lab/go-securesystemslib/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// PayloadType is the DSSE payload type of an in-toto statement.
const PayloadType = "application/vnd.in-toto+json"

// Predicate types. Provenance and test results use the in-toto/SLSA
// predicates; a promotion has none standard, so it is imgpipe's own.
const (
	PredicateProvenance = "https://slsa.dev/provenance/v1"
	PredicateTestResult = "https://in-toto.io/attestation/test-result/v0.1"
	PredicatePromotion  = "urn:imgpipe:promotion:v1"
	// BuildType names how imgpipe builds: a Packer template run.
	BuildType = "urn:imgpipe:build:packer:v1"
	// BuilderID names the builder in provenance.
	BuilderID = "urn:imgpipe:builder"
)

// Subject is the artifact a statement is about: an image version's disk,
// named by its SHA-256.
type Subject struct {
	Image   string
	Version string
	SHA256  string // hex
}

func (s Subject) descriptor() (*ita.ResourceDescriptor, error) {
	if s.Image == "" || s.Version == "" || len(s.SHA256) != 64 {
		return nil, fmt.Errorf("attest: a subject needs an image, a version and a SHA-256 (got %q %q %q)", s.Image, s.Version, s.SHA256)
	}
	return &ita.ResourceDescriptor{Name: s.Image + "@" + s.Version, Digest: map[string]string{"sha256": s.SHA256}}, nil
}

// Build is what a provenance statement says of how an artifact was made.
type Build struct {
	Subject Subject
	// Template is the Packer template path as given; Parameters are the
	// variables it was run with (values the operator chose, never secrets).
	Template   string
	Parameters map[string]string
	// GitCommit and TemplateHash resolve the template's source.
	GitCommit    string
	TemplateHash string
	// Versions of the tools: imgpipe and Packer.
	ImgpipeVersion string
	PackerVersion  string
	// BuildID is the run that made it; Parent the image it was built on.
	BuildID    string
	Parent     string
	StartedOn  time.Time
	FinishedOn time.Time
}

// Provenance returns the SLSA v1 provenance statement of b.
func Provenance(b Build) (*ita.Statement, error) {
	subj, err := b.Subject.descriptor()
	if err != nil {
		return nil, err
	}
	ext := map[string]any{"template": b.Template}
	if len(b.Parameters) > 0 {
		params := map[string]any{}
		for k, v := range b.Parameters {
			params[k] = v
		}
		ext["parameters"] = params
	}
	extS, err := structpb.NewStruct(ext)
	if err != nil {
		return nil, err
	}
	var deps []*ita.ResourceDescriptor
	if b.GitCommit != "" {
		deps = append(deps, &ita.ResourceDescriptor{Name: "template-source", Digest: map[string]string{"gitCommit": b.GitCommit}})
	}
	if alg, hex, ok := strings.Cut(b.TemplateHash, ":"); ok && alg != "" && hex != "" {
		deps = append(deps, &ita.ResourceDescriptor{Name: b.Template, Digest: map[string]string{alg: hex}})
	}
	if b.Parent != "" {
		deps = append(deps, &ita.ResourceDescriptor{Name: "parent-image", Uri: "imgpipe:" + b.Parent})
	}
	versions := map[string]string{}
	if b.ImgpipeVersion != "" {
		versions["imgpipe"] = b.ImgpipeVersion
	}
	if b.PackerVersion != "" {
		versions["packer"] = b.PackerVersion
	}
	meta := &slsa.BuildMetadata{InvocationId: b.BuildID}
	if !b.StartedOn.IsZero() {
		meta.StartedOn = timestamppb.New(b.StartedOn)
	}
	if !b.FinishedOn.IsZero() {
		meta.FinishedOn = timestamppb.New(b.FinishedOn)
	}
	pred := &slsa.Provenance{
		BuildDefinition: &slsa.BuildDefinition{BuildType: BuildType, ExternalParameters: extS, ResolvedDependencies: deps},
		RunDetails:      &slsa.RunDetails{Builder: &slsa.Builder{Id: BuilderID, Version: versions}, Metadata: meta},
	}
	if err := pred.Validate(); err != nil {
		return nil, fmt.Errorf("attest: provenance: %w", err)
	}
	return statement(subj, PredicateProvenance, pred)
}

// Check is one check of a test run.
type Check struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
}

// TestResult is what a test attestation says.
type TestResult struct {
	Subject Subject
	Runner  string // qemu, hyperv
	RunID   string
	Checks  []Check
	At      time.Time
}

// TestStatement returns the in-toto test-result statement of r: PASSED when
// every check passed, FAILED otherwise.
func TestStatement(r TestResult) (*ita.Statement, error) {
	subj, err := r.Subject.descriptor()
	if err != nil {
		return nil, err
	}
	result := "PASSED"
	var passed, failed []any
	for _, c := range r.Checks {
		if c.Passed {
			passed = append(passed, c.Name)
		} else {
			failed = append(failed, c.Name)
			result = "FAILED"
		}
	}
	if len(r.Checks) == 0 {
		return nil, errors.New("attest: a test result needs at least one check")
	}
	pred := map[string]any{
		"result":        result,
		"configuration": []any{map[string]any{"name": "runner:" + r.Runner}},
		"passedTests":   nonNil(passed),
		"failedTests":   nonNil(failed),
		"warnedTests":   []any{},
	}
	if r.RunID != "" {
		pred["url"] = "imgpipe:run/" + r.RunID
	}
	return structStatement(subj, PredicateTestResult, pred)
}

// Promotion is what a promotion attestation says.
type Promotion struct {
	Subject Subject
	Channel string
	From    string // previous version of the channel, if any
	By      string
	At      time.Time
}

// PromotionStatement returns the statement of a channel promotion.
func PromotionStatement(p Promotion) (*ita.Statement, error) {
	subj, err := p.Subject.descriptor()
	if err != nil {
		return nil, err
	}
	if p.Channel == "" {
		return nil, errors.New("attest: a promotion needs a channel")
	}
	return structStatement(subj, PredicatePromotion, map[string]any{
		"channel": p.Channel, "from": p.From, "by": p.By, "at": p.At.UTC().Format(time.RFC3339),
	})
}

func nonNil(v []any) []any {
	if v == nil {
		return []any{}
	}
	return v
}

func structStatement(subj *ita.ResourceDescriptor, predType string, pred map[string]any) (*ita.Statement, error) {
	s, err := structpb.NewStruct(pred)
	if err != nil {
		return nil, err
	}
	st := &ita.Statement{Type: ita.StatementTypeUri, Subject: []*ita.ResourceDescriptor{subj}, PredicateType: predType, Predicate: s}
	return st, st.Validate()
}

func statement(subj *ita.ResourceDescriptor, predType string, pred *slsa.Provenance) (*ita.Statement, error) {
	raw, err := protojson.Marshal(pred)
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	if err := protojson.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	st := &ita.Statement{Type: ita.StatementTypeUri, Subject: []*ita.ResourceDescriptor{subj}, PredicateType: predType, Predicate: s}
	return st, st.Validate()
}

// Sign wraps st in a DSSE envelope signed by s and returns its JSON.
func Sign(ctx context.Context, s Signer, st *ita.Statement) ([]byte, error) {
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	payload, err := protojson.Marshal(st)
	if err != nil {
		return nil, err
	}
	es, err := dsse.NewEnvelopeSigner(s)
	if err != nil {
		return nil, err
	}
	env, err := es.SignPayload(ctx, PayloadType, payload)
	if err != nil {
		return nil, fmt.Errorf("attest: sign: %w", err)
	}
	return json.MarshalIndent(env, "", "  ")
}

// maxEnvelope bounds what Verify reads.
const maxEnvelope = 16 << 20

// Verified is a statement whose signature checked out, with the key that made it.
type Verified struct {
	Statement *ita.Statement
	KeyID     string
}

// Errors Verify returns, for callers that tell them apart.
var (
	ErrBadSignature = errors.New("signature does not verify")
	ErrWrongSubject = errors.New("statement is about another artifact")
)

// Verify checks the envelope's signature by v and decodes its statement. It
// refuses an envelope with no signature by v, a payload that is not an
// in-toto statement, and (when want is set) a statement whose subject is not
// want's digest.
func Verify(ctx context.Context, v Verifier, envelope []byte, want *Subject) (*Verified, error) {
	if len(envelope) > maxEnvelope {
		return nil, fmt.Errorf("attest: envelope of %d bytes is larger than %d", len(envelope), maxEnvelope)
	}
	var env dsse.Envelope
	if err := json.Unmarshal(envelope, &env); err != nil {
		return nil, fmt.Errorf("attest: not a DSSE envelope: %w", err)
	}
	if env.PayloadType != PayloadType {
		return nil, fmt.Errorf("attest: payload type %q, want %q", env.PayloadType, PayloadType)
	}
	ev, err := dsse.NewEnvelopeVerifier(v)
	if err != nil {
		return nil, err
	}
	keys, payload, err := ev.VerifyAndDecode(ctx, &env)
	if err != nil {
		kid, _ := v.KeyID()
		return nil, fmt.Errorf("attest: %w by key %s: %v", ErrBadSignature, kid, err)
	}
	st := &ita.Statement{}
	if err := protojson.Unmarshal(payload, st); err != nil {
		return nil, fmt.Errorf("attest: signed payload is not an in-toto statement: %w", err)
	}
	if err := st.Validate(); err != nil {
		return nil, fmt.Errorf("attest: signed statement is invalid: %w", err)
	}
	if want != nil {
		if err := checkSubject(st, *want); err != nil {
			return nil, err
		}
	}
	return &Verified{Statement: st, KeyID: keys[0].KeyID}, nil
}

func checkSubject(st *ita.Statement, want Subject) error {
	var got []string
	for _, s := range st.GetSubject() {
		if s.GetDigest()["sha256"] == want.SHA256 {
			return nil
		}
		got = append(got, s.GetName()+" sha256:"+s.GetDigest()["sha256"])
	}
	sort.Strings(got)
	return fmt.Errorf("attest: %w: it names %v, not %s@%s sha256:%s", ErrWrongSubject, got, want.Image, want.Version, want.SHA256)
}

// PredicateField returns a top-level string field of the statement's predicate.
func PredicateField(st *ita.Statement, name string) string {
	if f, ok := st.GetPredicate().GetFields()[name]; ok {
		return f.GetStringValue()
	}
	return ""
}
