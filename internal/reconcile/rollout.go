package reconcile

import (
	"context"
	"errors"
	"fmt"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/rollout"
)

// RolloutWith is a Pipeline.Rollout that rolls a promoted version out by
// the file's rollout block for the image (none: nothing to roll out)
// through the rollout driver: it starts the rollout and runs it until it is
// done, paused, or waits only on agents and people (on-prem hosts report
// the new version after their replacement script ran; AdvanceRollouts
// carries those on).
func RolloutWith(d *rollout.Driver, f *config.File) func(ctx context.Context, ref catalog.Ref, channel string) (int64, error) {
	return func(ctx context.Context, ref catalog.Ref, channel string) (int64, error) {
		rp := f.Rollout(ref.Image)
		if rp == nil {
			return 0, nil
		}
		r, err := d.Start(ctx, rollout.PolicyOf(rp), ref, rollout.StartOptions{Channel: channel})
		if err != nil {
			return 0, fmt.Errorf("%s is promoted to %s, but its rollout did not start: %w", ref, channel, err)
		}
		r, err = d.Run(ctx, r.ID)
		return r.ID, err
	}
}

// AdvanceRollouts moves on the running rollouts of the file's images: a
// step each (a scale set's next batch, the hosts whose agents now report
// the version). It returns the rollouts it looked at.
func AdvanceRollouts(ctx context.Context, d *rollout.Driver, f *config.File) ([]catalog.Rollout, error) {
	var out []catalog.Rollout
	var errs []error
	for _, img := range f.Images {
		if f.Rollout(img.Name) == nil {
			continue
		}
		rs, err := d.Cat.Rollouts(ctx, img.Name, 20)
		if err != nil {
			return out, err
		}
		for _, r := range rs {
			if r.State != catalog.RolloutRunning {
				continue
			}
			r, err := d.Advance(ctx, r.ID)
			if err != nil {
				errs = append(errs, fmt.Errorf("rollout %d of %s: %w", r.ID, r.Ref, err))
			}
			out = append(out, r)
		}
	}
	return out, errors.Join(errs...)
}
