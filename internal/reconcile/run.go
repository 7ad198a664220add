package reconcile

import (
	"context"
	"errors"
	"fmt"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// ErrNoGate is returned by Runner.Test when no test gate can test the
// version: the loop then never promotes it.
var ErrNoGate = errors.New("no test gate")

// Runner carries out a rebuild: the same pipeline a person runs.
type Runner interface {
	// Build builds the image from source (its packer block) and returns the artifact.
	Build(ctx context.Context, img *config.Image) (artifact string, err error)
	// Publish publishes the artifact to the file's destinations as a new
	// version, staged (in no channel), and returns it with its pipeline run.
	Publish(ctx context.Context, img *config.Image, artifact string) (version string, runID int64, err error)
	// Test runs the image's test gate against the version (ErrNoGate: none).
	Test(ctx context.Context, ref catalog.Ref) error
	// Promote points channel at the version.
	Promote(ctx context.Context, ref catalog.Ref, channel string) error
}

// Roller is a Runner that also rolls a promoted version out to what runs
// the image (the pipeline file's rollout block). Roll returns the rollout's
// record (0: nothing to roll out) once it is done or waits only on agents
// and people; an error (an unhealthy batch paused it) does not undo the
// promotion.
type Roller interface {
	Roll(ctx context.Context, ref catalog.Ref, channel string) (rolloutID int64, err error)
}

// Outcome is how a rebuild went.
type Outcome struct {
	Image    string `json:"image"`
	Claimed  bool   `json:"claimed"`            // false: another rebuild was running
	Decision int64  `json:"decision,omitempty"` // the rebuild decision record
	RunID    int64  `json:"run_id,omitempty"`
	Version  string `json:"version,omitempty"`
	State    string `json:"state"` // succeeded, failed, unpromoted, or running (not claimed)
	Promoted string `json:"promoted,omitempty"`
	// Stopped is the reason the loop stopped for the image ("" when it did not).
	Stopped string `json:"stopped,omitempty"`
	// Running is the rebuild that was running when this one was not claimed.
	Running *catalog.Decision `json:"running,omitempty"`
	// Rollout is the rollout of the promoted version (0: none), and
	// RolloutError why it stopped short.
	Rollout      int64  `json:"rollout_id,omitempty"`
	RolloutError string `json:"rollout_error,omitempty"`
}

// Rebuild carries out a rebuild decision: it claims the image's one running
// rebuild (a second trigger during a run claims nothing and is recorded as
// a wait), builds, publishes staged, tests and promotes to the policy's
// channel. A failed build, publish, test or promotion — or a missing test
// gate — ends the rebuild without promotion and stops the loop for the
// image (a stopped decision with the reason), until a new version of the
// image is published or a person resumes it. A returned error means the
// catalog could not record the outcome; failures of the pipeline itself are
// in the Outcome.
func (r *Reconciler) Rebuild(ctx context.Context, d Decision, run Runner) (Outcome, error) {
	out := Outcome{Image: d.Image}
	if d.Action != catalog.DecisionRebuild {
		return out, fmt.Errorf("%w: %s: the decision is %s, not rebuild", catalog.ErrInvalid, d.Image, d.Action)
	}
	img := r.File.Image(d.Image)
	pol := r.File.Rebuild(d.Image)
	if img == nil || pol == nil {
		return out, fmt.Errorf("%w: image %q has no rebuild block in %s", catalog.ErrInvalid, d.Image, r.File.Path)
	}
	claim, ok, err := r.Catalog.ClaimRebuild(ctx, catalog.Decision{Image: d.Image, Trigger: d.Trigger, Reason: d.Reason, At: r.now()})
	if err != nil {
		return out, err
	}
	if !ok {
		out.State, out.Running = catalog.RebuildRunning, &claim
		wait := d
		wait.Action, wait.Guard = catalog.DecisionWait, GuardRunning
		wait.Reason = fmt.Sprintf("%s; a rebuild is running (decision %d by %s since %s): wait",
			trimAction(d.Reason), claim.ID, claim.Claimant, fmtTime(claim.At))
		_, err := r.Record(ctx, []Decision{wait})
		return out, err
	}
	out.Claimed, out.Decision = true, claim.ID
	if err := r.emit(ctx, claim, d.Current); err != nil {
		return out, err
	}
	// the drift observation served its purpose: a new version starts afresh
	if pol.OnDrift != nil {
		if err := r.Catalog.SetDriftSince(ctx, d.Image, pol.OnDrift.Channel, time.Time{}); err != nil {
			return out, err
		}
	}
	stop := func(state, why string) (Outcome, error) {
		out.State = state
		out.Stopped = why + ": stopped until a new version of " + d.Image + " is published or `imgpipe reconcile resume " + d.Image + "`"
		if err := r.Catalog.FinishRebuild(ctx, claim.ID, state, out.Version, out.RunID); err != nil {
			return out, err
		}
		rec, err := r.Catalog.RecordDecision(ctx, catalog.Decision{Image: d.Image, Decision: catalog.DecisionStopped, Reason: out.Stopped,
			RunID: out.RunID, Version: out.Version, At: r.now()})
		if err != nil {
			return out, err
		}
		return out, r.emit(ctx, rec, out.Version)
	}

	artifact, err := run.Build(ctx, img)
	if err != nil {
		return stop(catalog.RebuildFailed, fmt.Sprintf("the rebuild of %s failed to build: %v", d.Image, err))
	}
	version, runID, err := run.Publish(ctx, img, artifact)
	out.Version, out.RunID = version, runID
	if runID != 0 {
		if err := r.Catalog.SetDecisionRun(ctx, claim.ID, runID); err != nil {
			return out, err
		}
	}
	if err != nil {
		return stop(catalog.RebuildFailed, fmt.Sprintf("the rebuild of %s failed to publish (run %d): %v", d.Image, runID, err))
	}
	ref := catalog.Ref{Image: d.Image, Version: version}
	if err := run.Test(ctx, ref); err != nil {
		if errors.Is(err, ErrNoGate) {
			return stop(catalog.RebuildUnpromoted, fmt.Sprintf("%s was built and published but not tested (%v), so it is not promoted to %s", ref, err, pol.PromoteTo))
		}
		return stop(catalog.RebuildFailed, fmt.Sprintf("%s failed its test: %v", ref, err))
	}
	if err := run.Promote(ctx, ref, pol.PromoteTo); err != nil {
		return stop(catalog.RebuildFailed, fmt.Sprintf("%s passed its test but promotion to %s failed: %v", ref, pol.PromoteTo, err))
	}
	out.State, out.Promoted = catalog.RebuildSucceeded, pol.PromoteTo
	if err := r.Catalog.FinishRebuild(ctx, claim.ID, catalog.RebuildSucceeded, version, runID); err != nil {
		return out, err
	}
	claim.State, claim.Version, claim.RunID = catalog.RebuildSucceeded, version, runID
	if err := r.emit(ctx, claim, version); err != nil {
		return out, err
	}
	if rr, ok := run.(Roller); ok {
		id, err := rr.Roll(ctx, ref, pol.PromoteTo)
		out.Rollout = id
		if err != nil {
			out.RolloutError = err.Error()
		}
	}
	return out, nil
}

// Resume records that a person resumed the stopped loop of image.
func (r *Reconciler) Resume(ctx context.Context, image, by string) (catalog.Decision, error) {
	if r.File.Rebuild(image) == nil {
		return catalog.Decision{}, fmt.Errorf("%w: image %q has no rebuild block in %s", catalog.ErrInvalid, image, r.File.Path)
	}
	rec, err := r.Catalog.RecordDecision(ctx, catalog.Decision{Image: image, Decision: catalog.DecisionResume,
		Reason: fmt.Sprintf("resumed by %s", by), At: r.now()})
	if err != nil {
		return rec, err
	}
	return rec, r.emit(ctx, rec, "")
}

// trimAction drops the ": rebuild" a reason ends with.
func trimAction(reason string) string {
	for _, s := range []string{": " + catalog.DecisionRebuild, ": " + catalog.DecisionWait} {
		if len(reason) > len(s) && reason[len(reason)-len(s):] == s {
			return reason[:len(reason)-len(s)]
		}
	}
	return reason
}
