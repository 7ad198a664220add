package testrun

// imgpipe test as one call: what the command line asks (Options), checked
// and loaded (Prepare), then run against the catalog (Plan.Run).

import (
	"context"
	"errors"
	"fmt"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// Options are what imgpipe test is asked.
type Options struct {
	File string // the pipeline file whose test blocks say what to check (required)
	Only string // run only this test block
	// Runner is qemu (boot here) or hyperv: the PowerShell for a Hyper-V
	// host, or with Reports, record what that script saved.
	Runner  string
	Reports []string
	Accel   string // qemu: auto, kvm or tcg
	Disk    string // qemu: boot this disk instead of the library copy
	HyperV  HyperVOptions
	By      string
	SignKey string // sign each result with this private key
}

// Plan is an imgpipe test ready to run: its options checked, the file
// loaded, its tests selected and the signer loaded.
type Plan struct {
	Options
	Ref    catalog.Ref
	Config *config.File
	Tests  []Test
	Signer attest.Signer
	// Progress, when set, hears what the qemu runner is doing.
	Progress func(string)
}

// Prepare checks o and loads what the test of ref needs.
func Prepare(ref catalog.Ref, o Options) (*Plan, error) {
	if o.File == "" {
		return nil, errors.New("give the pipeline file with -f: its test blocks say what to check")
	}
	if o.Runner != "qemu" && o.Runner != "hyperv" {
		return nil, fmt.Errorf("--runner %q: use qemu or hyperv", o.Runner)
	}
	if len(o.Reports) > 0 && o.Runner != "hyperv" {
		return nil, errors.New("--report records the Hyper-V script's reports: add --runner hyperv")
	}
	p := &Plan{Options: o, Ref: ref}
	var err error
	if p.Config, err = config.Load(o.File); err != nil {
		return nil, err
	}
	if p.Tests, err = Selected(p.Config, ref.Image, o.Only); err != nil {
		return nil, err
	}
	if o.SignKey != "" {
		if p.Signer, err = attest.LoadSigner(o.SignKey); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// Run runs the plan: the Hyper-V script to print (and no results), or the
// results of the tests, recorded in cat (the Hyper-V script's reports, or
// qemu's boots).
func (p *Plan) Run(ctx context.Context, cat *catalog.Catalog) (script string, results []Result, err error) {
	switch {
	case p.Runner == "hyperv" && len(p.Reports) == 0:
		script, err = HyperVScriptOf(ctx, cat, p.Ref, p.Tests, p.HyperV)
		return script, nil, err
	case p.Runner == "hyperv":
		results, err = RecordHyperV(ctx, cat, p.Ref, p.Tests, p.Reports, p.By, p.Signer)
	default:
		q := &Qemu{Accel: p.Accel, Progress: p.Progress}
		results, err = RunTests(ctx, cat, Request{Ref: p.Ref, Tests: p.Tests, Disk: p.Disk, Runner: q, By: p.By, Signer: p.Signer})
	}
	return "", results, err
}

// Passed says whether every result passed.
func Passed(results []Result) bool {
	for _, r := range results {
		if !r.Passed {
			return false
		}
	}
	return true
}

// TestedStates are the TESTED cells of imgpipe versions: passed, failed or
// "" for each version's current artifact digest.
func TestedStates(ctx context.Context, cat *catalog.Catalog, vs []catalog.Version) ([]string, error) {
	out := make([]string, len(vs))
	for i, v := range vs {
		runs, err := cat.TestRuns(ctx, v.Ref())
		if err != nil {
			return nil, err
		}
		out[i] = catalog.TestState(runs, v.ArtifactSHA256)
	}
	return out, nil
}
