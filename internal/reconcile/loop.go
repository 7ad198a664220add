package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/rollout"
)

// Round is one evaluation of every policy and the rebuilds it started.
type Round struct {
	Decisions []Decision `json:"decisions"`
	Outcomes  []Outcome  `json:"outcomes,omitempty"`
	// Skipped: another replica holds this interval's round (Loop only).
	Skipped bool `json:"skipped,omitempty"`
	// Rollouts are the running rollouts the round moved on (Loop only).
	Rollouts []catalog.Rollout `json:"rollouts,omitempty"`
}

// Failed says whether a rebuild of the round failed.
func (r Round) Failed() bool {
	for _, o := range r.Outcomes {
		if o.State == catalog.RebuildFailed {
			return true
		}
	}
	return false
}

// ErrRebuildFailed is the error of a round in which a rebuild failed.
var ErrRebuildFailed = errors.New("a rebuild failed: its loop is stopped (imgpipe reconcile history shows why)")

// Err is ErrRebuildFailed when a rebuild of the round failed, else nil.
func (r Round) Err() error {
	if r.Failed() {
		return ErrRebuildFailed
	}
	return nil
}

// Evaluate is one imgpipe reconcile: with dryRun the decisions only
// (nothing is recorded, built or promoted, and run is not used), else
// Reconcile with run.
func (r *Reconciler) Evaluate(ctx context.Context, dryRun bool, run Runner, starting func(Decision)) (Round, error) {
	if dryRun {
		ds, err := r.Decide(ctx)
		return Round{Decisions: ds}, err
	}
	return r.Reconcile(ctx, run, starting)
}

// Reconcile decides, records, and carries out each rebuild decision with
// run, in file order (imgpipe reconcile without --dry-run). starting, when
// set, hears each rebuild before it starts.
func (r *Reconciler) Reconcile(ctx context.Context, run Runner, starting func(Decision)) (Round, error) {
	var rd Round
	ds, err := r.Decide(ctx)
	if err != nil {
		return rd, err
	}
	if rd.Decisions, err = r.Record(ctx, ds); err != nil {
		return rd, err
	}
	for _, d := range rd.Decisions {
		if d.Action != catalog.DecisionRebuild {
			continue
		}
		if starting != nil {
			starting(d)
		}
		out, err := r.Rebuild(ctx, d, run)
		if err != nil {
			return rd, err
		}
		rd.Outcomes = append(rd.Outcomes, out)
	}
	return rd, nil
}

// RoundName is the catalog's name for the reconciler's rounds in serve.
const RoundName = "reconcile"

// Loop runs the reconciler every Interval inside a long-running process
// (imgpipe serve). Replicas sharing the catalog take turns: each round is
// claimed in the catalog first (Catalog.ClaimJob), so one replica
// evaluates the policies per interval; whichever runs a rebuild, the
// catalog keeps one running per image (ClaimRebuild).
type Loop struct {
	Reconciler *Reconciler
	Runner     Runner
	Interval   time.Duration // default 10 minutes
	// Report hears every round this process ran (not the skipped ones) and
	// its error (nil: silent).
	Report func(Round, error)
	// Rollouts, when set, moves on the running rollouts of the file's
	// images after each round (AdvanceRollouts).
	Rollouts *rollout.Driver
}

func (l *Loop) interval() time.Duration {
	if l.Interval > 0 {
		return l.Interval
	}
	return 10 * time.Minute
}

// Once claims this interval's round (a catalog job: held while the round
// runs, at most one per interval across replicas) and, when it got it,
// reconciles.
func (l *Loop) Once(ctx context.Context) (Round, error) {
	cat, holder := l.Reconciler.Catalog, catalog.Claimant()
	// a claim outlives a long round (a rebuild boots its test), but not a
	// replica that died holding it for long
	ttl := max(2*l.interval(), 30*time.Minute)
	ok, err := cat.ClaimJob(ctx, RoundName, holder, l.interval(), ttl)
	if err != nil || !ok {
		return Round{Skipped: !ok}, err
	}
	rd, err := l.round(ctx)
	if ferr := cat.FinishJob(context.WithoutCancel(ctx), RoundName, holder); ferr != nil && err == nil {
		err = ferr
	}
	return rd, err
}

func (l *Loop) round(ctx context.Context) (Round, error) {
	rd, err := l.Reconciler.Reconcile(ctx, l.Runner, nil)
	if err != nil || l.Rollouts == nil {
		return rd, err
	}
	rd.Rollouts, err = AdvanceRollouts(ctx, l.Rollouts, l.Reconciler.File)
	return rd, err
}

// Run reconciles at once and then every Interval until ctx ends.
func (l *Loop) Run(ctx context.Context) {
	t := time.NewTicker(l.interval())
	defer t.Stop()
	for {
		rd, err := l.Once(ctx)
		if l.Report != nil && !rd.Skipped && ctx.Err() == nil {
			l.Report(rd, err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// LogRounds is a Loop.Report that logs to l what a round did: its error,
// each decision that acts (not repeated), each rebuild's outcome.
func LogRounds(l *slog.Logger) func(Round, error) {
	return func(rd Round, err error) {
		if err != nil {
			l.Warn("reconcile", "err", err)
		}
		for _, d := range rd.Decisions {
			if d.Action != ActionNone && !d.Repeated {
				l.Info("reconcile", "image", d.Image, "decision", d.Action, "reason", d.Reason)
			}
		}
		for _, o := range rd.Outcomes {
			l.Info("reconcile rebuild", "image", o.Image, "state", o.State, "version", o.Version, "promoted", o.Promoted,
				"stopped", o.Stopped, "rollout", o.Rollout, "rollout_error", o.RolloutError)
		}
	}
}

// ErrNoRebuild says a pipeline file has no rebuild block: nothing for the
// reconciler to evaluate.
var ErrNoRebuild = errors.New("no rebuild block")

// LoadFile loads the pipeline file at path, which must hold a rebuild
// block (else an error wrapping ErrNoRebuild).
func LoadFile(path string) (*config.File, error) {
	f, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if len(f.Rebuilds) == 0 {
		return nil, fmt.Errorf("%s has %w", path, ErrNoRebuild)
	}
	return f, nil
}
