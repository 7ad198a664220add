package reconcile

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/build"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/promote"
	"imgpipe/internal/testrun"
)

// Pipeline is the Runner a person's commands amount to: Packer builds the
// image's packer block (internal/build), the pipeline engine publishes the
// artifact to the file's destinations as a new version (internal/pipeline,
// recorded as a publish run), the test gate boots the version's library
// copy with the file's test blocks (internal/testrun, recorded as a test
// run), and a version that passed is promoted (the channel's requirements
// checked as imgpipe promote checks them).
type Pipeline struct {
	File    *config.File
	Catalog *catalog.Catalog
	// Connect wires the file's destinations for img into an engine and
	// makes the request that publishes artifact (the CLI's wiring: Azure
	// credentials and progress live there).
	Connect func(ctx context.Context, img *config.Image, artifact string) (*pipeline.Engine, pipeline.Request, error)
	// Builder replaces Packer (nil: build.Run of the image's packer block).
	Builder func(ctx context.Context, img *config.Image) (artifact string, err error)
	// Tester boots the versions under test (nil: qemu, KVM when it opens).
	Tester *testrun.Qemu
	// Stager includes a version promoted to prod in the gallery's latest
	// (nil: a version with gallery copies is promoted in the catalog and
	// the promotion's error says it is still excluded from latest).
	Stager promote.Stager
	// By is who the test runs and promotions are recorded as (default "imgpipe reconcile").
	By string
	// Progress hears Packer's UI lines (nil: silent).
	Progress func(string)
	// Rollout rolls a promoted version out (nil: the version is promoted
	// and nothing is rolled out); see Roller.
	Rollout func(ctx context.Context, ref catalog.Ref, channel string) (int64, error)
}

// Roll rolls the promoted version out through Rollout, if set.
func (p *Pipeline) Roll(ctx context.Context, ref catalog.Ref, channel string) (int64, error) {
	if p.Rollout == nil {
		return 0, nil
	}
	return p.Rollout(ctx, ref, channel)
}

var (
	_ Runner = (*Pipeline)(nil)
	_ Roller = (*Pipeline)(nil)
)

func (p *Pipeline) by() string {
	if p.By != "" {
		return p.By
	}
	return "imgpipe reconcile"
}

// Build builds img from its packer block and returns the disk artifact,
// recorded as a run of kind build (its end is the build event).
func (p *Pipeline) Build(ctx context.Context, img *config.Image) (artifact string, err error) {
	run, err := p.Catalog.StartRun(ctx, catalog.Run{Kind: catalog.RunBuild, Image: img.Name, By: p.by()})
	if err != nil {
		return "", err
	}
	defer func() {
		if ferr := p.Catalog.FinishRun(context.WithoutCancel(ctx), run.ID, err); ferr != nil && err == nil {
			err = ferr
		}
	}()
	if p.Builder != nil {
		return p.Builder(ctx, img)
	}
	return p.packer(ctx, img)
}

func (p *Pipeline) packer(ctx context.Context, img *config.Image) (string, error) {
	if img.Packer == nil {
		return "", fmt.Errorf("image %q has no packer block, so there is no source to rebuild it from: add packer { template = ... } to it", img.Name)
	}
	o := build.Options{Template: img.Packer.Template, Vars: img.Packer.Vars, Only: img.Packer.Only, WorkDir: p.File.Dir}
	if p.Progress != nil {
		o.OnLine = func(l build.Line) {
			if _, text, ok := l.UI(); ok {
				p.Progress(text)
			}
		}
	}
	res, err := build.Run(ctx, o)
	if err != nil {
		return "", err
	}
	if a := img.Packer.Artifact; a != "" {
		matches, _ := filepath.Glob(a)
		if len(matches) == 1 {
			return matches[0], nil
		}
		if _, err := os.Stat(a); err == nil {
			return a, nil
		}
		return "", fmt.Errorf("packer built, but the artifact %s is not there (%d matches): check the packer block's artifact", a, len(matches))
	}
	for _, a := range res.Artifacts {
		if a.Format != "" {
			return a.Path, nil
		}
	}
	return "", fmt.Errorf("packer built %d artifacts but none is a disk image: set the packer block's artifact", len(res.Artifacts))
}

// Publish publishes artifact as a new version of img to the file's
// destinations and returns the version and its publish run.
func (p *Pipeline) Publish(ctx context.Context, img *config.Image, artifact string) (string, int64, error) {
	if p.Connect == nil {
		return "", 0, errors.New("the reconciler has no destinations to publish to (Pipeline.Connect is not set)")
	}
	e, req, err := p.Connect(ctx, img, artifact)
	if err != nil {
		return "", 0, err
	}
	if req.Source == nil {
		return "", 0, fmt.Errorf("the build of %s left no disk to publish (%s)", img.Name, artifact)
	}
	_, res, err := e.Publish(ctx, req, nil)
	var runID int64
	if runs, rerr := p.Catalog.Runs(ctx, catalog.RunFilter{Image: img.Name, Kind: "publish", Limit: 1}); rerr == nil && len(runs) > 0 {
		runID = runs[0].ID
	}
	if res == nil {
		return "", runID, err
	}
	return res.Version, runID, err
}

// Test runs the file's test blocks for the image against the version's
// on-prem library copy through the test gate. ErrNoGate: the file declares
// no test, or the version has no library copy to boot.
func (p *Pipeline) Test(ctx context.Context, ref catalog.Ref) error {
	tests := testrun.FromConfig(p.File.TestsOf(ref.Image))
	if len(tests) == 0 {
		return fmt.Errorf("%w: the pipeline file declares no test for %s (add test \"smoke\" { ... }), so nothing can pass it", ErrNoGate, ref.Image)
	}
	disk, v, err := testrun.LibraryDisk(ctx, p.Catalog, ref)
	if errors.Is(err, testrun.ErrNoLibraryCopy) {
		return fmt.Errorf("%w: %w", ErrNoGate, err)
	}
	if err != nil {
		return err
	}
	q := p.Tester
	if q == nil {
		q = &testrun.Qemu{}
	}
	g := &testrun.Gate{Catalog: p.Catalog, Runner: q, By: p.by()}
	results, err := g.Run(ctx, ref, disk, v, tests)
	if err != nil {
		return fmt.Errorf("the test gate could not run: %w", err)
	}
	var failed []string
	for _, r := range results {
		if f := r.FirstFailure(); f != nil {
			out := f.Output
			if len(out) > 300 {
				out = out[:300] + "..."
			}
			failed = append(failed, fmt.Sprintf("test %s failed on %s (%s: %s)", r.Test, r.Runner, f.Name, out))
		}
	}
	if len(failed) > 0 {
		return errors.New(strings.Join(failed, "; "))
	}
	return nil
}

// Promote points channel at the version as imgpipe promote does: the
// channel's requirements (the file's channel block, else the catalog's; a
// trusted signed provenance) are checked, and a version promoted to prod is
// included in the gallery's latest through Stager.
func (p *Pipeline) Promote(ctx context.Context, ref catalog.Ref, channel string) error {
	_, err := promote.Promote(ctx, p.Catalog, promote.Request{Ref: ref, Channel: channel, By: p.by(), File: p.File, Stager: p.Stager})
	return err
}
