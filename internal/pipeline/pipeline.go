// Package pipeline is the engine of a publish: given the pipeline file's
// image, its inspected source and a catalog, it plans and applies one
// version across every destination (an Azure Compute Gallery, an on-prem
// library, ...), takes the image's lock, records the run, its steps and the
// lineage from what each destination's apply returned, and moves channels.
//
// A destination implements one small interface (Destination); the engine
// knows nothing of Azure or of on-prem libraries beyond it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/source"
)

// Request is what to publish: the image block, its source (nil when not
// built yet: plan only) and the version asked for ("" lets a destination
// or the engine decide it).
type Request struct {
	Image   *config.Image
	Source  *source.Info
	Version string
}

// Destination is one place a version is delivered to.
type Destination interface {
	// Name identifies the destination in plans and runs ("azure emu").
	Name() string
	// Plan reads the destination and says what is missing for r.
	Plan(ctx context.Context, r Request) (DestinationPlan, error)
	// Apply makes what the plan says is missing, reporting each step to
	// rec, and returns every copy of the version the destination holds
	// (made now or found), even when it fails part way.
	Apply(ctx context.Context, p DestinationPlan, rec StepRecorder) (*Applied, error)
}

// DestinationPlan is one destination's part of a plan.
type DestinationPlan interface {
	// Version is the version this plan delivers ("" when the destination
	// does not decide versions and was not told one).
	Version() string
	HasChanges() bool
	// Text renders the plan for people.
	Text() string
}

// VersionDecider is a destination that decides the version itself (Azure:
// version = "next-patch" in the file). The engine plans these first.
type VersionDecider interface {
	DecidesVersion() bool
}

// VersionLister is a destination that knows the versions it holds, so the
// engine can pick the version for destinations that do not decide it.
type VersionLister interface {
	KnownVersions(ctx context.Context, image string) ([]Known, error)
}

// Known is a version a destination (or the catalog) holds, with the
// SHA-256 of the source it was made from.
type Known struct {
	Version string
	SHA256  string
}

// ChannelSetter is a destination that keeps channel pointers of its own
// (the on-prem library), moved after the catalog's.
type ChannelSetter interface {
	SetChannel(ctx context.Context, image, version, channel string) error
}

// Applied is what applying one destination's plan left.
type Applied struct {
	Copies []Copy
	// Channel, when set, is moved to the version (catalog first, then the
	// destination).
	Channel string
	// Result is the destination's own account, for the view.
	Result any
}

// Copy is one copy of a version, as the destination that holds it reports
// it: the catalog records it as it is.
type Copy struct {
	Kind        catalog.CopyKind
	ID          string
	Location    string
	Fingerprint string
	State       string
	// Parent is the ID of the copy (of the same Applied) this one was made
	// from; "" for the source file (the artifact).
	Parent string
	Detail map[string]any
}

// Step is one step of a run as a destination reports it.
type Step struct {
	Destination string
	Action      string
	Kind        string
	Name        string
	ResourceID  string
	Fingerprint map[string]string
	Failed      bool
	Error       string
	Started     time.Time
	Ended       time.Time
	// Deleted says the step removed the resource (its copies are marked
	// deleted in the catalog).
	Deleted bool
}

// StepRecorder is told about every step a destination applies.
type StepRecorder interface {
	RecordStep(ctx context.Context, s Step) error
}

// Plan is a publish planned across every destination.
type Plan struct {
	Image        string
	Version      string
	Source       *source.Info
	Destinations []PlannedDestination
	request      Request
	dests        []Destination
}

// PlannedDestination is one destination's part of a Plan.
type PlannedDestination struct {
	Name string
	Plan DestinationPlan
}

// HasChanges reports whether applying p changes anything anywhere.
func (p *Plan) HasChanges() bool {
	for _, d := range p.Destinations {
		if d.Plan.HasChanges() {
			return true
		}
	}
	return false
}

// Result is what a publish did.
type Result struct {
	Image        string
	Version      string
	Destinations []DestinationResult
	Catalog      string // where it was recorded ("" without a catalog)
}

// DestinationResult is what one destination did.
type DestinationResult struct {
	Name     string
	Applied  *Applied
	Channel  string
	Promoted bool
	Note     string // e.g. the channel was not moved backwards
}

// Engine runs plans across destinations. Catalog may be nil: nothing is
// recorded and no lock is taken.
type Engine struct {
	Catalog *catalog.Catalog
	By      string // who runs it (recorded in runs, locks and promotions)
	// Destinations in the order they are applied.
	Destinations []Destination
	// AfterStep, if set, is called after each step is recorded (tests
	// stop a run there).
	AfterStep func(ctx context.Context, s Step)
	// Gate, if set, is consulted around each channel move (gate.go).
	Gate Gate
}

// ErrNoDestination: the pipeline file names no place to publish to.
var ErrNoDestination = errors.New("the pipeline file has neither an azure nor an onprem block: nothing to publish to")

// Plan plans r across every destination: first those that decide the
// version, then (with that version, or one the engine picks) the others.
func (e *Engine) Plan(ctx context.Context, r Request) (*Plan, error) {
	if len(e.Destinations) == 0 {
		return nil, ErrNoDestination
	}
	p := &Plan{Image: r.Image.Name, Source: r.Source, Version: r.Version}
	planned := make([]DestinationPlan, len(e.Destinations))
	plan := func(i int, d Destination) error {
		dp, err := d.Plan(ctx, Request{Image: r.Image, Source: r.Source, Version: p.Version})
		if err != nil {
			return err
		}
		if v := dp.Version(); v != "" {
			if p.Version != "" && v != p.Version {
				return fmt.Errorf("destination %s would publish version %s, another %s: give them one version", d.Name(), v, p.Version)
			}
			p.Version = v
		}
		planned[i] = dp
		return nil
	}
	for i, d := range e.Destinations {
		if vd, ok := d.(VersionDecider); ok && vd.DecidesVersion() {
			if err := plan(i, d); err != nil {
				return nil, err
			}
		}
	}
	if p.Version == "" {
		v, err := e.nextVersion(ctx, r)
		if err != nil {
			return nil, err
		}
		p.Version = v
	}
	for i, d := range e.Destinations {
		if planned[i] == nil {
			if err := plan(i, d); err != nil {
				return nil, err
			}
		}
	}
	for i, d := range e.Destinations {
		p.Destinations = append(p.Destinations, PlannedDestination{Name: d.Name(), Plan: planned[i]})
	}
	p.request = Request{Image: r.Image, Source: r.Source, Version: p.Version}
	p.dests = e.Destinations
	return p, nil
}

// Publish takes the image's lock (with a catalog), plans, lets confirm see
// the plan (false: nothing is applied, ErrNotApplied; an error: returned),
// applies and records.
func (e *Engine) Publish(ctx context.Context, r Request, confirm func(*Plan) (bool, error)) (*Plan, *Result, error) {
	var (
		plan *Plan
		res  *Result
	)
	run := func(ctx context.Context) error {
		var err error
		if plan, err = e.Plan(ctx, r); err != nil {
			return err
		}
		if r.Source == nil {
			return fmt.Errorf("image %q has no disk yet: run imgpipe build first, or pass --source DISK", r.Image.Name)
		}
		if confirm != nil {
			ok, err := confirm(plan)
			if err != nil {
				return err
			}
			if !ok {
				return ErrNotApplied
			}
		}
		res, err = e.apply(ctx, plan)
		return err
	}
	var err error
	if e.Catalog == nil {
		err = run(ctx)
	} else {
		// one publish of an image at a time (across hosts sharing the catalog)
		err = e.Catalog.WithImageLock(ctx, r.Image.Name, e.By, run)
	}
	return plan, res, err
}

// ErrNotApplied: the plan was shown and declined.
var ErrNotApplied = errors.New("not applied")

// Apply applies a plan made earlier (a saved plan re-planned and found the
// same), under the image's lock.
func (e *Engine) Apply(ctx context.Context, p *Plan) (*Result, error) {
	var res *Result
	run := func(ctx context.Context) error {
		var err error
		res, err = e.apply(ctx, p)
		return err
	}
	if e.Catalog == nil {
		return res, run(ctx)
	}
	return res, e.Catalog.WithImageLock(ctx, p.Image, e.By, run)
}

// apply applies each destination's plan in order, records the copies each
// returned and moves channels. A destination still replicating does not
// stop the others; its error is returned at the end.
func (e *Engine) apply(ctx context.Context, p *Plan) (*Result, error) {
	res := &Result{Image: p.Image, Version: p.Version}
	rec := &recorder{e: e}
	if e.Catalog != nil {
		res.Catalog = e.Catalog.Location()
		if p.HasChanges() {
			run, err := e.Catalog.StartRun(ctx, catalog.Run{Kind: "publish", Image: p.Image, Version: p.Version, By: e.By})
			if err != nil {
				return nil, fmt.Errorf("catalog: start the run record: %w", err)
			}
			rec.runID = run.ID
		}
	}
	lin := &lineage{e: e, plan: p}
	var later error // still replicating
	err := func() error {
		for i, d := range p.dests {
			dp := p.Destinations[i].Plan
			rec.dest = d.Name()
			ap, err := d.Apply(ctx, dp, rec)
			if ap != nil {
				// what was made is recorded even when the run was interrupted
				if rerr := lin.record(context.WithoutCancel(ctx), ap.Copies); rerr != nil {
					return errors.Join(err, fmt.Errorf("record the lineage of %s %s in the catalog: %w", p.Image, p.Version, rerr))
				}
			}
			if err != nil && !errors.Is(err, ErrStillReplicating) {
				return err
			}
			if err != nil {
				later = err
			}
			dr := DestinationResult{Name: d.Name(), Applied: ap}
			if ap != nil && ap.Channel != "" {
				dr.Channel = ap.Channel
				if err := e.moveChannel(ctx, d, p, &dr); err != nil {
					res.Destinations = append(res.Destinations, dr)
					return err
				}
			}
			res.Destinations = append(res.Destinations, dr)
		}
		return nil
	}()
	if rec.runID != 0 {
		runErr := err
		if runErr == nil {
			runErr = later
		}
		if ferr := e.Catalog.FinishRun(context.WithoutCancel(ctx), rec.runID, runErr); ferr != nil && err == nil {
			err = fmt.Errorf("catalog: finish the run record: %w", ferr)
		}
	}
	if err != nil {
		return res, err
	}
	return res, later
}

// moveChannel moves a destination's channel to the version: in the catalog
// (forward only), then in the destination.
func (e *Engine) moveChannel(ctx context.Context, d Destination, p *Plan, dr *DestinationResult) error {
	if e.Catalog != nil {
		ref := catalog.Ref{Image: p.Image, Version: p.Version}
		rules, err := e.beforePromote(ctx, ref, dr.Channel)
		if err != nil {
			return err
		}
		if _, err := e.Catalog.Promote(ctx, catalog.PromoteRequest{Ref: ref, Channel: dr.Channel, By: e.By, Rules: rules}); err != nil {
			if errors.Is(err, catalog.ErrNotForward) {
				dr.Note = err.Error() + " (library pointer left as it is)"
				return nil
			}
			return err
		}
		if err := e.afterPromote(ctx, ref, dr.Channel); err != nil {
			return err
		}
	}
	if cs, ok := d.(ChannelSetter); ok {
		if err := cs.SetChannel(ctx, p.Image, p.Version, dr.Channel); err != nil {
			return err
		}
	}
	dr.Promoted = true
	return nil
}
