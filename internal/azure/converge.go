package azure

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Retries, in two layers and one policy for every phase (plan, apply,
// destroy, describe):
//
//  1. Each ARM request: azcore's retry policy with ARMRetry (Connection.Open
//     sets it), for 408/429/5xx and dropped connections, honouring
//     Retry-After.
//  2. Each operation as a whole: a failure that outlasted those retries, or
//     a long-running operation that ended Failed, is transient (isTransient,
//     the one classifier); the state is read again and the work resumes, up
//     to Publisher.Attempts times. Plan and PlanDestroy, which only read,
//     are retried the same way as Apply and Destroy, which also write:
//     before, a throttled read in the plan phase ended a publish that its
//     apply phase would have carried through.

// ARMRetry is the azcore retry policy of every ARM client imgpipe makes.
// Azure's own guidance for ARM throttling is to honour Retry-After and back
// off exponentially; eight retries from 2 s doubling to 60 s ride out a
// few minutes of throttling or a front-end blip per request.
var ARMRetry = policy.RetryOptions{
	MaxRetries:    8,
	RetryDelay:    2 * time.Second,
	MaxRetryDelay: 60 * time.Second,
}

func (p *Publisher) attempts() int {
	if p.Attempts > 0 {
		return p.Attempts
	}
	return 3
}

// retryTransient runs op until it succeeds, fails for a reason that is not
// transient, the attempts are used up, or ctx ends, waiting a poll interval
// (doubling, at most a minute) between attempts.
func retryTransient[T any](ctx context.Context, p *Publisher, what string, op func(context.Context) (T, error)) (T, error) {
	wait := p.poll()
	for attempt := 1; ; attempt++ {
		v, err := op(ctx)
		if err == nil || !isTransient(err) || attempt >= p.attempts() {
			return v, err
		}
		slog.Warn("azure: "+what+" failed, trying again", "attempt", attempt, "err", shortErr(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}

// Plan reads the current state and decides the steps. It changes nothing.
// A read that fails transiently is retried under the Attempts policy.
func (p *Publisher) Plan(ctx context.Context, d *Desired) (*Plan, error) {
	return retryTransient(ctx, p, "read the state for the plan", func(ctx context.Context) (*Plan, error) {
		return p.planOnce(ctx, d)
	})
}

// PlanDestroy decides what destroying id (a gallery, definition or version)
// removes. A version still used by a VM or scale set is kept (and so are its
// parents) unless force. It changes nothing; a read that fails transiently
// is retried under the Attempts policy.
func (p *Publisher) PlanDestroy(ctx context.Context, id ResourceID, force bool) (*DestroyPlan, error) {
	return retryTransient(ctx, p, "read the state for the destroy plan", func(ctx context.Context) (*DestroyPlan, error) {
		return p.planDestroyOnce(ctx, id, force)
	})
}

// Destroy carries out a destroy plan in its order, each operation awaited.
// A failure does not stop the independent deletions: every failure is
// returned together (errors.Join); parents of something that failed are
// not attempted. When a failure is transient (throttling or a server error
// that outlasted azcore's retries, a delete that ended Failed), Destroy
// carries out what is left of the same approved plan again, up to Attempts
// times. (It does not plan again: once a version is gone, a new plan no
// longer knows which managed image or blob was its source, and would leave
// them behind.)
func (p *Publisher) Destroy(ctx context.Context, dp *DestroyPlan) error {
	done := map[string]bool{}
	wait := p.poll()
	for attempt := 1; ; attempt++ {
		err := p.destroyOnce(ctx, dp, done)
		if err == nil || !isTransient(err) || attempt >= p.attempts() || ctx.Err() != nil {
			return err
		}
		slog.Warn("azure: destroy step failed, carrying out what is left again", "attempt", attempt, "err", shortErr(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return errors.Join(err, ctx.Err())
		case <-t.C:
		}
		wait = min(2*wait, time.Minute)
	}
}
