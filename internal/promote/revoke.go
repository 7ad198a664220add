package promote

import (
	"context"
	"fmt"
	"strings"

	"imgpipe/internal/catalog"
)

// RevokerSource opens the revoker of a copy kind (false: that kind is done
// by hand and listed as still to do).
type RevokerSource func(kind catalog.CopyKind) (func(ctx context.Context) (catalog.Revoker, error), bool)

// Revocation is what a revocation did: the catalog's result, whose Actions
// are those left to do outside the catalog, with those done and why the
// failed ones failed.
type Revocation struct {
	*catalog.RevokeResult
	Done   []catalog.RevokeAction `json:"done,omitempty"`
	Failed []string               `json:"failed,omitempty"`
}

// Revoke records the revocation (as a run of kind revoke), then changes
// what it can outside the catalog through revokers: each gallery version is
// excluded from latest and tagged, each library copy marked. What could not
// be changed (Azure or the library unreachable) is left in Actions with the
// reason in Failed; the revocation in the catalog stands. emit, when set,
// is called once the revocation is recorded.
func Revoke(ctx context.Context, cat *catalog.Catalog, req catalog.RevokeRequest, revokers RevokerSource, emit func(*catalog.RevokeResult)) (Revocation, error) {
	run, err := cat.StartRun(ctx, catalog.Run{Kind: catalog.RunRevoke, Image: req.Image, Version: req.Version, By: req.By})
	if err != nil {
		return Revocation{}, err
	}
	res, err := cat.Revoke(ctx, req)
	if ferr := cat.FinishRun(ctx, run.ID, err); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return Revocation{}, err
	}
	if emit != nil {
		emit(res)
	}
	done, left, aerr := applyRevokers(ctx, cat, res, revokers)
	res.Actions = left
	out := Revocation{RevokeResult: res, Done: done}
	if aerr != nil {
		for _, line := range strings.Split(aerr.Error(), "\n") {
			if line = strings.TrimSpace(line); line != "" {
				out.Failed = append(out.Failed, line)
			}
		}
	}
	return out, nil
}

// kindRevoker dispatches each action to the revoker of its copy kind.
type kindRevoker map[catalog.CopyKind]catalog.Revoker

func (k kindRevoker) RevokeCopy(ctx context.Context, a catalog.RevokeAction) error {
	r, ok := k[a.Copy.Kind]
	if !ok {
		return fmt.Errorf("no revoker for %s copies", a.Copy.Kind)
	}
	return r.RevokeCopy(ctx, a)
}

// applyRevokers performs the actions that have a registered revoker and
// returns those left to do by hand.
func applyRevokers(ctx context.Context, c *catalog.Catalog, res *catalog.RevokeResult, revokers RevokerSource) (done, left []catalog.RevokeAction, err error) {
	kr := kindRevoker{}
	var mine catalog.RevokeResult
	for _, a := range res.Actions {
		var mk func(ctx context.Context) (catalog.Revoker, error)
		ok := false
		if revokers != nil {
			mk, ok = revokers(a.Copy.Kind) // kinds without one are printed as still to do
		}
		if !ok {
			left = append(left, a)
			continue
		}
		if _, have := kr[a.Copy.Kind]; !have {
			r, err := mk(ctx)
			if err != nil {
				return nil, res.Actions, err
			}
			kr[a.Copy.Kind] = r
		}
		mine.Actions = append(mine.Actions, a)
	}
	if len(mine.Actions) == 0 {
		return nil, left, nil
	}
	err = c.ApplyRevocation(ctx, &mine, kr)
	after := map[int64]string{}
	for _, a := range mine.Actions {
		cps, cerr := c.Copies(ctx, a.Ref)
		if cerr != nil {
			return nil, res.Actions, cerr
		}
		for _, cp := range cps {
			after[cp.ID] = cp.State
		}
	}
	for _, a := range mine.Actions {
		if after[a.Copy.ID] == catalog.StateRevoked {
			done = append(done, a)
		} else {
			left = append(left, a)
		}
	}
	return done, left, err
}
