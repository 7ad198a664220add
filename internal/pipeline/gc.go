package pipeline

// Retention (gc) across destinations: the catalog plans, the Fleet says
// what VMs and scale sets use and acts on the copies.

import (
	"context"
	"errors"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// NewFleet is the Fleet over the subscriptions of the pipeline file's azure
// blocks (file may be nil) and then extra (e.g. $AZURE_SUBSCRIPTION_ID),
// each named once.
func NewFleet(connect func(subscription string) (*azure.Publisher, error), file *config.File, extra ...string) *Fleet {
	f := &Fleet{Connect: connect}
	seen := map[string]bool{}
	add := func(sub string) {
		if sub != "" && !seen[strings.ToLower(sub)] {
			seen[strings.ToLower(sub)] = true
			f.Subscriptions = append(f.Subscriptions, sub)
		}
	}
	if file != nil {
		for _, az := range file.Azure {
			add(az.Subscription)
		}
	}
	for _, sub := range extra {
		add(sub)
	}
	return f
}

// WithRetention returns p with the pipeline file's retention block (r, may
// be nil) in every field the command line did not give: given reports
// whether a gc flag ("keep", "older-than", "grace", "exclude-region",
// "exclude-tag") was set.
func WithRetention(p catalog.Policy, r *config.Retention, given func(flag string) bool) catalog.Policy {
	if r == nil {
		return p
	}
	if !given("keep") && r.KeepLast > 0 {
		p.KeepNewest = r.KeepLast
	}
	if !given("older-than") && r.KeepWithin > 0 {
		p.OlderThan = r.KeepWithin
	}
	if !given("grace") && r.GracePeriod != nil {
		p.Grace = *r.GracePeriod
	}
	if !given("exclude-region") {
		p.ExcludeRegions = r.ExcludeRegions
	}
	if !given("exclude-tag") {
		p.ExcludeTags = nil
		for k, v := range r.ExcludeTags {
			if p.ExcludeTags == nil {
				p.ExcludeTags = map[string]string{}
			}
			p.ExcludeTags[k] = v
		}
	}
	return p
}

// ErrNoExecutor is gc asked to apply with no subscription to act in.
var ErrNoExecutor = errors.New("cannot apply: no Azure executor without a subscription (give -f pipeline.hcl or set AZURE_SUBSCRIPTION_ID); nothing was changed (the plan above is what would run)")

// GCReport is what gc planned and, when it applied the plan, did.
type GCReport struct {
	Plan   *catalog.GCPlan
	Result *catalog.GCResult // nil unless applied
	// AzureConsulted: VMs and scale sets were asked which versions they use
	// (false: in use means the catalog's fleet hosts only).
	AzureConsulted bool
}

// GC plans retention in cat by policy p, with what the fleet uses, and with
// apply runs the plan through the fleet (a run of kind gc, recorded by the
// catalog). A fleet without subscriptions plans from the catalog's fleet
// data only and cannot apply: ErrNoExecutor, with the plan.
func GC(ctx context.Context, cat *catalog.Catalog, f *Fleet, p catalog.Policy, apply bool, by string) (*GCReport, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var inUse catalog.InUseSource
	if f != nil && len(f.Subscriptions) > 0 {
		if err := f.Connected(); err != nil {
			return nil, err
		}
		inUse = f
	}
	rep := &GCReport{AzureConsulted: inUse != nil}
	var err error
	if !apply || inUse == nil {
		if rep.Plan, err = cat.PlanGC(ctx, p, inUse); err != nil {
			return nil, err
		}
		if apply {
			return rep, ErrNoExecutor
		}
		return rep, nil
	}
	rep.Plan, rep.Result, err = cat.RunGC(ctx, p, inUse, f, by)
	return rep, err
}
