package pipeline

// The test gate's side of the engine: before publish moves a channel that
// requires a passing test (prod, by default), the version's tests run on its
// library copy (FileGate, through internal/testrun) and the promotion then
// checks what they recorded; after a move to prod the version's gallery
// versions are included in latest (staging, internal/promote).

import (
	"context"
	"fmt"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/promote"
	"imgpipe/internal/testrun"
)

// Gate is consulted around each channel move of a publish.
type Gate interface {
	// BeforePromote runs before channel moves to ref: it may test the
	// version, and returns the channel's rules from the pipeline file (nil:
	// the catalog's).
	BeforePromote(ctx context.Context, ref catalog.Ref, channel string) (*catalog.ChannelRules, error)
	// AfterPromote runs once the catalog moved channel to ref.
	AfterPromote(ctx context.Context, ref catalog.Ref, channel string) error
}

func (e *Engine) beforePromote(ctx context.Context, ref catalog.Ref, channel string) (*catalog.ChannelRules, error) {
	if e.Gate == nil {
		return nil, nil
	}
	return e.Gate.BeforePromote(ctx, ref, channel)
}

func (e *Engine) afterPromote(ctx context.Context, ref catalog.Ref, channel string) error {
	if e.Gate == nil {
		return nil
	}
	return e.Gate.AfterPromote(ctx, ref, channel)
}

// FileGate is the gate of a pipeline file: its channel blocks are the
// rules, its test blocks the tests run (once per version) before a move to
// a channel that requires "tested".
type FileGate struct {
	Catalog *catalog.Catalog
	File    *config.File
	// Run runs the tests and records their results (default: the qemu
	// runner, testrun.RunTests with Runner).
	Run    func(ctx context.Context, ref catalog.Ref, tests []testrun.Test) error
	Runner *testrun.Qemu
	// Stager includes a version promoted to prod in latest (nil: Azure is
	// not reached, and a prod move with gallery versions fails saying so).
	Stager promote.Stager
	By     string

	tested map[catalog.Ref]bool
}

// BeforePromote tests ref when channel requires a passing test and the file
// declares tests for the image; the promotion then judges what was recorded
// (and names a failing check).
func (g *FileGate) BeforePromote(ctx context.Context, ref catalog.Ref, channel string) (*catalog.ChannelRules, error) {
	rules := promote.Rules(g.File, ref.Image, channel)
	var reqs []catalog.Requirement
	if rules != nil {
		reqs = rules.Require
	} else {
		var err error
		if reqs, err = g.Catalog.Requirements(ctx, ref.Image, channel); err != nil {
			return nil, err
		}
	}
	needs := false
	for _, r := range reqs {
		needs = needs || r.Kind == catalog.KindTested
	}
	if !needs || g.tested[ref] || len(g.File.TestsOf(ref.Image)) == 0 {
		return rules, nil
	}
	tests, err := testrun.Selected(g.File, ref.Image, "")
	if err != nil {
		return nil, err
	}
	if g.tested == nil {
		g.tested = map[catalog.Ref]bool{}
	}
	g.tested[ref] = true
	run := g.Run
	if run == nil {
		run = func(ctx context.Context, ref catalog.Ref, tests []testrun.Test) error {
			q := g.Runner
			if q == nil {
				q = &testrun.Qemu{}
			}
			_, err := testrun.RunTests(ctx, g.Catalog, testrun.Request{Ref: ref, Tests: tests, Runner: q, By: g.By})
			return err
		}
	}
	if err := run(ctx, ref, tests); err != nil {
		return nil, fmt.Errorf("the test gate before %s could not run (%s is not moved): %w", channel, channel, err)
	}
	return rules, nil
}

// AfterPromote includes a version promoted to prod in latest.
func (g *FileGate) AfterPromote(ctx context.Context, ref catalog.Ref, channel string) error {
	if channel != promote.Prod {
		return nil
	}
	res := promote.Result{Promotion: catalog.Promotion{Image: ref.Image, Channel: channel, To: ref.Version}}
	return promote.Unstage(ctx, g.Catalog, ref, g.Stager, &res)
}

// SetExcludeFromLatest sets a gallery version's excludeFromLatest in its
// subscription: Fleet is internal/promote's Stager.
func (f *Fleet) SetExcludeFromLatest(ctx context.Context, versionID string, exclude bool) error {
	p, err := f.publisherFor(versionID)
	if err != nil {
		return fmt.Errorf("stage %s: %w", versionID, err)
	}
	return p.SetExcludeFromLatest(ctx, versionID, exclude)
}
