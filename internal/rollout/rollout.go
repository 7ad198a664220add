// Package rollout moves what runs an image to a promoted version, and keeps
// the record of it in the catalog: Azure scale sets in batches (through the
// scale set's rolling upgrade, or instance by instance), standalone Azure VMs
// with a plan to replace each, on-prem Hyper-V hosts with a replacement
// script each, complete when their agents report the new version.
//
// A rollout is driven one step at a time: Start records it, Advance does
// the next step of every target (one batch of a scale set, one look at the
// fleet's reports) and records the outcome, so a rollout can be paused,
// resumed and rolled back between any two steps, and a restart loses
// nothing. Run advances until the rollout is done or waits only on people
// and agents. Every step is an event, queued with the record in the
// catalog's outbox (internal/events delivers it), with an id receivers can
// dedupe on.
package rollout

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// ErrUnhealthy is wrapped by the error of Run when a batch's instances
// failed their health check and the rollout paused.
var ErrUnhealthy = errors.New("rollout paused: upgraded instances are unhealthy")

// Member states (besides azure's pending, upgrading, upgraded, unhealthy).
const (
	// StateReplace: a standalone VM or an on-prem VM waiting to be replaced
	// by its plan or script.
	StateReplace = "replace"
	// StateBlocked: the member cannot take the version as planned (the
	// check-deploy verdict or the VM's generation says why).
	StateBlocked = "blocked"
	// StateMissing: the VM or host is gone.
	StateMissing = "missing"
)

// Policy is what a rollout was started with, kept in its catalog record so
// any process can advance it.
type Policy struct {
	// VersionID is the gallery image version rolled out ("" when there is
	// no Azure target); DefinitionID is its definition.
	VersionID    string `json:"version_id,omitempty"`
	DefinitionID string `json:"definition_id,omitempty"`
	// MaxBatchPercent: the share of a scale set upgraded at once; 0 takes
	// the scale set's own rollingUpgradePolicy (Azure's default, 20%).
	MaxBatchPercent int `json:"max_batch_percent,omitempty"`
	// MaxUnhealthyPercent: the share of upgraded instances that may be
	// unhealthy before the rollout pauses; nil takes the scale set's own.
	MaxUnhealthyPercent *int                 `json:"max_unhealthy_percent,omitempty"`
	Pause               time.Duration        `json:"pause,omitempty"`
	ScaleSets           []string             `json:"scale_sets,omitempty"`
	VMs                 []string             `json:"vms,omitempty"`
	Hosts               []config.RolloutHost `json:"hosts,omitempty"`
	// Pin: always point a scale set's model at the version, even when the
	// model references the definition (a rollback: latest is newer).
	Pin bool `json:"pin,omitempty"`
}

// PolicyOf turns a pipeline file's rollout block into a Policy.
func PolicyOf(r *config.Rollout) Policy {
	u := r.MaxUnhealthyPercent
	return Policy{MaxBatchPercent: r.MaxBatchPercent, MaxUnhealthyPercent: &u, Pause: r.Pause,
		ScaleSets: r.ScaleSets, VMs: r.VMs, Hosts: r.Hosts}
}

// Driver starts and advances rollouts.
type Driver struct {
	Cat *catalog.Catalog
	// Azure returns the clients of a subscription; nil when there are no
	// Azure targets (a rollout with one then fails with a clear error).
	Azure func(ctx context.Context, subscription string) (*azure.Clients, error)
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Poll is how often long-running operations and Run look again (default 5 s).
	Poll time.Duration
	// Report, when set, is told about every recorded step.
	Report func(Step)
}

// Step is one recorded change of a rollout: it started, a target moved
// (a batch, a host), paused, resumed, completed, rolled back.
type Step struct {
	Rollout int64  `json:"rollout_id"`
	N       int    `json:"step"`
	Image   string `json:"image"`
	Version string `json:"version"`
	Action  string `json:"action"` // started, progress, paused, resumed, completed, failed, rolled_back
	State   string `json:"state"`  // the rollout's state after the step
	Target  string `json:"target,omitempty"`
	Kind    string `json:"kind,omitempty"`
	Batch   int    `json:"batch,omitempty"`
	// Done and Total count the members on the version (and all members) of
	// Target, or of the rollout.
	Done   int    `json:"done"`
	Total  int    `json:"total"`
	Detail string `json:"detail,omitempty"`
}

// SetRolloutID sets the rollout's id (the catalog calls it on the first
// step, made before the id exists).
func (s *Step) SetRolloutID(id int64) { s.Rollout = id }

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Driver) poll() time.Duration {
	if d.Poll > 0 {
		return d.Poll
	}
	return 5 * time.Second
}

// StartOptions are the facts Start cannot find in the catalog alone.
type StartOptions struct {
	// Channel the version was promoted to (recorded; used to find the
	// previous version). Default "prod".
	Channel string
	// Previous is the version to roll back to; default: what the channel
	// pointed at before it was promoted to this version.
	Previous string
	// VersionID is the gallery image version id; default: the version's
	// gallery copy recorded in the catalog.
	VersionID string
}

// Start records a rollout of ref to the targets of pol, running; Advance
// (or Run) does the work.
func (d *Driver) Start(ctx context.Context, pol Policy, ref catalog.Ref, o StartOptions) (catalog.Rollout, error) {
	if len(pol.ScaleSets)+len(pol.VMs)+len(pol.Hosts) == 0 {
		return catalog.Rollout{}, errors.New("the rollout has no target: give scale sets, VMs or on-prem hosts (a rollout block in the pipeline file)")
	}
	if o.Channel == "" {
		o.Channel = "prod"
	}
	if _, err := d.Cat.Version(ctx, ref); err != nil {
		return catalog.Rollout{}, fmt.Errorf("roll out %s: %w", ref, err)
	}
	if pol.VersionID == "" {
		pol.VersionID = o.VersionID
	}
	if pol.VersionID == "" && len(pol.ScaleSets)+len(pol.VMs) > 0 {
		id, err := galleryVersionOf(ctx, d.Cat, ref)
		if err != nil {
			return catalog.Rollout{}, err
		}
		pol.VersionID = id
	}
	if pol.VersionID != "" {
		v, err := azure.ParseResourceID(pol.VersionID)
		if err != nil {
			return catalog.Rollout{}, err
		}
		if v.Kind() != "version" || v.Version != ref.Version {
			return catalog.Rollout{}, fmt.Errorf("%s is not gallery image version %s", pol.VersionID, ref.Version)
		}
		pol.DefinitionID = v.DefinitionID()
	}
	prev := o.Previous
	if prev == "" {
		ps, err := d.Cat.Promotions(ctx, ref.Image, o.Channel)
		if err != nil {
			return catalog.Rollout{}, err
		}
		var at time.Time
		for _, p := range ps {
			if p.To == ref.Version && p.From != "" && p.From != ref.Version && !p.At.Before(at) {
				prev, at = p.From, p.At
			}
		}
	}
	r, err := d.create(ctx, pol, ref, o.Channel, prev, 0)
	if err != nil {
		return r, err
	}
	return r, d.supersede(ctx, r)
}

// supersede ends the image's earlier rollouts that are still running or
// paused and share a target with r: r moves those targets on.
func (d *Driver) supersede(ctx context.Context, r catalog.Rollout) error {
	rs, err := d.Cat.Rollouts(ctx, r.Ref.Image, 50)
	if err != nil {
		return err
	}
	mine := map[string]bool{}
	for _, t := range r.Targets {
		mine[strings.ToLower(t.Target)] = true
	}
	var errs []error
	for _, o := range rs {
		if o.ID == r.ID || o.Done() {
			continue
		}
		shared := false
		for _, t := range o.Targets {
			shared = shared || mine[strings.ToLower(t.Target)]
		}
		if !shared && (len(o.Targets) > 0 || !mine[strings.ToLower(o.Target)]) {
			continue
		}
		detail := fmt.Sprintf("superseded by rollout %d of %s", r.ID, r.Ref.Version)
		for _, t := range o.Targets {
			if t.Kind == catalog.RolloutScaleSet && t.Mode == "Rolling" && t.State == catalog.RolloutRunning && !t.UpgradeAt.IsZero() {
				if err := d.cancelUpgrade(ctx, t.Target); err != nil {
					errs = append(errs, fmt.Errorf("rollout %d: %w", o.ID, err))
				}
			}
		}
		if err := d.record(ctx, &o, catalog.RolloutSuperseded, detail, o.Targets, o.Members, []Step{{Action: "superseded", Detail: detail}}); err != nil {
			errs = append(errs, fmt.Errorf("rollout %d: %w", o.ID, err))
		}
	}
	return errors.Join(errs...)
}

func (d *Driver) create(ctx context.Context, pol Policy, ref catalog.Ref, channel, prev string, rollbackOf int64) (catalog.Rollout, error) {
	var ts []catalog.RolloutTarget
	for _, id := range pol.ScaleSets {
		ts = append(ts, catalog.RolloutTarget{Target: id, Kind: catalog.RolloutScaleSet})
	}
	for _, id := range pol.VMs {
		ts = append(ts, catalog.RolloutTarget{Target: id, Kind: catalog.RolloutVM})
	}
	for _, h := range pol.Hosts {
		ts = append(ts, catalog.RolloutTarget{Target: hostsTarget(h), Kind: catalog.RolloutHosts})
	}
	raw, err := json.Marshal(pol)
	if err != nil {
		return catalog.Rollout{}, err
	}
	kind, target := catalog.RolloutPolicy, summary(pol)
	if len(ts) == 1 {
		kind, target = ts[0].Kind, ts[0].Target
	}
	detail := "to " + target
	if rollbackOf != 0 {
		detail = fmt.Sprintf("rollback of rollout %d, to %s", rollbackOf, target)
	}
	first := Step{N: 1, Image: ref.Image, Version: ref.Version, Action: "started", State: catalog.RolloutRunning, Detail: detail}
	r, err := d.Cat.CreateRollout(ctx, catalog.NewRollout{Ref: ref, Kind: kind, Target: target, Channel: channel, Previous: prev,
		RollbackOf: rollbackOf, Policy: raw, Targets: ts, Event: &catalog.RolloutEvent{N: 1, Data: &first}})
	if err != nil {
		return catalog.Rollout{}, err
	}
	d.report([]Step{first})
	return r, nil
}

func hostsTarget(h config.RolloutHost) string { return "hosts:" + h.Channel + "@" + h.OnPrem }

func summary(p Policy) string {
	var parts []string
	add := func(n int, one, many string) {
		switch {
		case n == 1:
			parts = append(parts, "1 "+one)
		case n > 1:
			parts = append(parts, fmt.Sprintf("%d %s", n, many))
		}
	}
	add(len(p.ScaleSets), "scale set", "scale sets")
	add(len(p.VMs), "VM", "VMs")
	for _, h := range p.Hosts {
		parts = append(parts, h.Channel+" hosts ("+h.OnPrem+")")
	}
	return strings.Join(parts, ", ")
}

// galleryVersionOf finds the gallery image version id recorded for ref.
func galleryVersionOf(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref) (string, error) {
	cps, err := cat.Copies(ctx, ref)
	if err != nil {
		return "", err
	}
	for _, c := range cps {
		if c.Kind == catalog.KindGalleryVersion && c.ResourceID != "" {
			return c.ResourceID, nil
		}
	}
	return "", fmt.Errorf("%s has no gallery image version in the catalog: publish it to Azure first (imgpipe publish), or give the version id", ref)
}

func policyOf(r catalog.Rollout) (Policy, error) {
	var p Policy
	if len(r.Policy) == 0 {
		return p, fmt.Errorf("rollout %d has no policy recorded (made by an older imgpipe): start a new rollout", r.ID)
	}
	if err := json.Unmarshal(r.Policy, &p); err != nil {
		return p, fmt.Errorf("rollout %d: the recorded policy is unreadable: %w", r.ID, err)
	}
	return p, nil
}

// Get reads a rollout.
func (d *Driver) Get(ctx context.Context, id int64) (catalog.Rollout, error) {
	return d.Cat.RolloutByID(ctx, id)
}

// Advance does the next step of every target of a running rollout and
// records it; a paused or finished rollout is returned as it is. An error
// leaves the record as it was (the step can be tried again).
func (d *Driver) Advance(ctx context.Context, id int64) (catalog.Rollout, error) {
	r, err := d.Cat.RolloutByID(ctx, id)
	if err != nil {
		return r, err
	}
	if r.State != catalog.RolloutRunning {
		return r, nil
	}
	pol, err := policyOf(r)
	if err != nil {
		return r, err
	}
	targets := make([]catalog.RolloutTarget, len(r.Targets))
	copy(targets, r.Targets)
	members := map[string][]catalog.RolloutMember{}
	for _, m := range r.Members {
		members[m.Target] = append(members[m.Target], m)
	}
	var steps []Step
	var errs []error
	for i := range targets {
		t := &targets[i]
		if t.State != catalog.RolloutRunning {
			continue
		}
		before := *t
		var ms []catalog.RolloutMember
		var err error
		switch t.Kind {
		case catalog.RolloutScaleSet:
			ms, err = d.stepScaleSet(ctx, r, pol, t, members[t.Target])
		case catalog.RolloutVM:
			ms, err = d.stepVM(ctx, r, pol, t, members[t.Target])
		case catalog.RolloutHosts:
			ms, err = d.stepHosts(ctx, r, pol, t, members[t.Target])
		default:
			err = fmt.Errorf("rollout %d: unknown target kind %q", r.ID, t.Kind)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", t.Target, err))
			*t = before
			continue
		}
		old := members[t.Target]
		members[t.Target] = ms
		if changed(before, *t, old, ms) {
			done, total := count(ms, r.Ref.Version)
			action := "progress"
			switch t.State {
			case catalog.RolloutPaused, catalog.RolloutCompleted, catalog.RolloutFailed:
				action = t.State
			}
			steps = append(steps, Step{Action: action, Target: t.Target, Kind: t.Kind, Batch: t.Batch, Done: done, Total: total, Detail: t.Detail})
		}
	}
	if len(steps) == 0 {
		return r, errors.Join(errs...)
	}
	var all []catalog.RolloutMember
	for _, t := range targets {
		all = append(all, members[t.Target]...)
	}
	state, detail := overall(targets)
	if state != r.State {
		done, total := count(all, r.Ref.Version)
		steps = append(steps, Step{Action: state, Done: done, Total: total, Detail: detail})
	}
	if err := d.record(ctx, &r, state, detail, targets, all, steps); err != nil {
		return r, errors.Join(append(errs, err)...)
	}
	return r, errors.Join(errs...)
}

// changed says whether a step changed what the record shows.
func changed(a, b catalog.RolloutTarget, am, bm []catalog.RolloutMember) bool {
	if a.State != b.State || a.Batch != b.Batch || a.Detail != b.Detail || a.Mode != b.Mode || !a.NextAt.Equal(b.NextAt) || !a.UpgradeAt.Equal(b.UpgradeAt) || len(am) != len(bm) {
		return true
	}
	for i := range am {
		x, y := am[i], bm[i]
		if x.Member != y.Member || x.Version != y.Version || x.State != y.State || x.Healthy != y.Healthy || x.Plan != y.Plan {
			return true
		}
	}
	return false
}

func count(ms []catalog.RolloutMember, version string) (done, total int) {
	for _, m := range ms {
		if m.Version == version && m.State == azure.InstanceUpgraded {
			done++
		}
	}
	return done, len(ms)
}

// overall is the rollout's state from its targets': paused when one is,
// running while one runs, failed when one failed, else completed.
func overall(ts []catalog.RolloutTarget) (string, string) {
	var paused, running, failed []string
	for _, t := range ts {
		switch t.State {
		case catalog.RolloutPaused:
			paused = append(paused, t.Detail)
		case catalog.RolloutRunning:
			running = append(running, t.Target)
		case catalog.RolloutFailed:
			failed = append(failed, t.Target+": "+t.Detail)
		}
	}
	switch {
	case len(paused) > 0:
		return catalog.RolloutPaused, strings.Join(paused, "; ")
	case len(running) > 0:
		return catalog.RolloutRunning, fmt.Sprintf("%d of %d targets in progress", len(running), len(ts))
	case len(failed) > 0:
		return catalog.RolloutFailed, strings.Join(failed, "; ")
	}
	return catalog.RolloutCompleted, "every target runs the version"
}

// record saves the rollout with its steps, each an event queued in the
// same transaction (ids rollout-ID-step-N: a save that raced another
// writer is refused whole, ErrConflict, and queues nothing).
func (d *Driver) record(ctx context.Context, r *catalog.Rollout, state, detail string, ts []catalog.RolloutTarget, ms []catalog.RolloutMember, steps []Step) error {
	evs := make([]catalog.RolloutEvent, len(steps))
	for i := range steps {
		s := &steps[i]
		s.Rollout, s.N, s.Image, s.Version, s.State = r.ID, r.Steps+1+i, r.Ref.Image, r.Ref.Version, state
		evs[i] = catalog.RolloutEvent{N: s.N, Data: *s}
	}
	// the record outlives an interrupt: written with a context that is not cancelled
	if err := d.Cat.SaveRollout(context.WithoutCancel(ctx), r.ID, catalog.RolloutSave{State: state, Detail: detail, Events: evs, Targets: ts, Members: ms}); err != nil {
		return err
	}
	r.State, r.Detail, r.Steps, r.Targets, r.Members = state, detail, r.Steps+len(steps), ts, ms
	d.report(steps)
	return nil
}

func (d *Driver) report(steps []Step) {
	if d.Report != nil {
		for _, s := range steps {
			d.Report(s)
		}
	}
}

// Run advances the rollout until it is finished or paused, or waits only
// on people and agents (VM replacements, host reports): what imgpipe can
// do itself is done. It returns the rollout as recorded last; a paused
// rollout is an error wrapping ErrUnhealthy when its detail says unhealthy.
func (d *Driver) Run(ctx context.Context, id int64) (catalog.Rollout, error) {
	for {
		r, err := d.Advance(ctx, id)
		if err != nil {
			return r, err
		}
		switch {
		case r.State == catalog.RolloutPaused:
			if strings.Contains(r.Detail, "unhealthy") {
				return r, fmt.Errorf("rollout %d of %s: %w: %s", r.ID, r.Ref, ErrUnhealthy, r.Detail)
			}
			return r, nil
		case r.Done(), !activeTargets(r):
			return r, nil
		}
		t := time.NewTimer(d.poll())
		select {
		case <-ctx.Done():
			t.Stop()
			return r, fmt.Errorf("rollout %d interrupted (it stays running; imgpipe rollout resume or the reconciler carries on): %w", id, ctx.Err())
		case <-t.C:
		}
	}
}

// activeTargets says whether imgpipe itself can move a target on (a scale
// set still rolling); VMs and hosts wait on people and agents.
func activeTargets(r catalog.Rollout) bool {
	for _, t := range r.Targets {
		if t.State == catalog.RolloutRunning && t.Kind == catalog.RolloutScaleSet {
			return true
		}
	}
	return false
}

// Pause stops a running rollout before its next batch: a scale set's
// rolling upgrade in progress is cancelled (the instances already upgraded
// stay so); Resume continues.
func (d *Driver) Pause(ctx context.Context, id int64, reason string) (catalog.Rollout, error) {
	r, err := d.Cat.RolloutByID(ctx, id)
	if err != nil {
		return r, err
	}
	if r.State != catalog.RolloutRunning {
		return r, fmt.Errorf("%w: rollout %d is %s, not running", catalog.ErrConflict, id, r.State)
	}
	if reason == "" {
		reason = "paused by hand"
	}
	ts := make([]catalog.RolloutTarget, len(r.Targets))
	copy(ts, r.Targets)
	for i := range ts {
		t := &ts[i]
		if t.State != catalog.RolloutRunning {
			continue
		}
		if t.Kind == catalog.RolloutScaleSet && t.Mode == "Rolling" && !t.UpgradeAt.IsZero() {
			if err := d.cancelUpgrade(ctx, t.Target); err != nil {
				return r, err
			}
		}
		t.State, t.Detail = catalog.RolloutPaused, reason
	}
	return r, d.record(ctx, &r, catalog.RolloutPaused, reason, ts, r.Members, []Step{{Action: "paused", Detail: reason}})
}

func (d *Driver) cancelUpgrade(ctx context.Context, target string) error {
	c, err := d.clients(ctx, target)
	if err != nil {
		return err
	}
	v, err := azure.ReadScaleSet(ctx, c, target, "")
	if err != nil {
		return err
	}
	if v.Upgrade == nil || v.Upgrade.Code != "RollingForward" {
		return nil
	}
	return azure.CancelRollingUpgrade(ctx, c, target, d.poll())
}

// Resume continues a paused rollout: every paused target runs again (a
// scale set in Rolling mode gets a new rolling upgrade, which leaves the
// instances already on the version alone).
func (d *Driver) Resume(ctx context.Context, id int64) (catalog.Rollout, error) {
	r, err := d.Cat.RolloutByID(ctx, id)
	if err != nil {
		return r, err
	}
	if r.State != catalog.RolloutPaused {
		return r, fmt.Errorf("%w: rollout %d is %s, not paused", catalog.ErrConflict, id, r.State)
	}
	ts := make([]catalog.RolloutTarget, len(r.Targets))
	copy(ts, r.Targets)
	for i := range ts {
		t := &ts[i]
		if t.State == catalog.RolloutPaused {
			t.State, t.Detail, t.UpgradeAt, t.NextAt = catalog.RolloutRunning, "resumed", time.Time{}, time.Time{}
		}
	}
	return r, d.record(ctx, &r, catalog.RolloutRunning, "resumed", ts, r.Members, []Step{{Action: "resumed"}})
}

// Rollback ends a rollout (pausing it first) and starts a rollout of the
// version its targets ran before, to the same targets; scale-set models are
// pinned to that version (latest would still be the newer one).
func (d *Driver) Rollback(ctx context.Context, id int64) (catalog.Rollout, error) {
	r, err := d.Cat.RolloutByID(ctx, id)
	if err != nil {
		return r, err
	}
	if r.State == catalog.RolloutRolledBack {
		return r, fmt.Errorf("%w: rollout %d is already rolled back", catalog.ErrConflict, id)
	}
	if r.Previous == "" {
		return r, fmt.Errorf("rollout %d of %s records no previous version (the channel had none): roll forward with imgpipe rollout start IMAGE VERSION", id, r.Ref)
	}
	pol, err := policyOf(r)
	if err != nil {
		return r, err
	}
	if r.State == catalog.RolloutRunning {
		if r, err = d.Pause(ctx, id, "rolling back to "+r.Previous); err != nil {
			return r, err
		}
	}
	prev := catalog.Ref{Image: r.Ref.Image, Version: r.Previous}
	if pol.DefinitionID != "" {
		pol.VersionID = pol.DefinitionID + "/versions/" + r.Previous
	}
	pol.Pin = true
	// completed rollouts are finished in the catalog: the rollback is linked
	// to them; running or paused ones end as rolled back.
	if !r.Done() {
		if err := d.record(ctx, &r, catalog.RolloutRolledBack, "rolled back to "+r.Previous, r.Targets, r.Members, []Step{{Action: "rolled_back", Detail: "to " + r.Previous}}); err != nil {
			return r, err
		}
	}
	return d.create(ctx, pol, prev, r.Channel, r.Ref.Version, r.ID)
}

// clients connects to the subscription of an Azure resource id.
func (d *Driver) clients(ctx context.Context, id string) (*azure.Clients, error) {
	if d.Azure == nil {
		return nil, fmt.Errorf("%s is an Azure target, but no Azure connection was given: run with -f pipeline.hcl (the azure block)", id)
	}
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) < 2 || !strings.EqualFold(parts[0], "subscriptions") {
		return nil, fmt.Errorf("%q is not an Azure resource id", id)
	}
	return d.Azure(ctx, strings.ToLower(parts[1]))
}

// Targets are the targets and policy values given on a command line; they
// replace or refine a pipeline file's rollout block.
type Targets struct {
	ScaleSets, VMs []string
	// HostsChannel adds the on-prem hosts of this channel, through each
	// onprem block of the image (their libraries hold the versions).
	HostsChannel string
	// MaxBatchPercent, MaxUnhealthyPercent and Pause override the policy when set.
	MaxBatchPercent     *int
	MaxUnhealthyPercent *int
	Pause               *time.Duration
}

// PolicyFor is the policy of image: the file's rollout block when no
// target is given, else the targets given; then the overrides.
func PolicyFor(file *config.File, image string, t Targets) (Policy, error) {
	var p Policy
	if file != nil && len(t.ScaleSets)+len(t.VMs) == 0 && t.HostsChannel == "" {
		ro := file.Rollout(image)
		if ro == nil {
			return p, fmt.Errorf("%s has no rollout block for image %s: add rollout { scale_sets = [...] } or give the targets", file.Path, image)
		}
		p = PolicyOf(ro)
	}
	p.ScaleSets = append(p.ScaleSets, t.ScaleSets...)
	p.VMs = append(p.VMs, t.VMs...)
	if t.HostsChannel != "" {
		if file == nil {
			return p, errors.New("on-prem hosts need the pipeline file: its onprem block's library holds the versions")
		}
		for _, o := range file.OnPrem {
			if o.Image == image {
				p.Hosts = append(p.Hosts, config.RolloutHost{Channel: t.HostsChannel, OnPrem: o.Name, Library: o.Library, HostLibraryPath: o.Library})
			}
		}
		if len(p.Hosts) == 0 {
			return p, fmt.Errorf("%s has no onprem block for image %s: its library holds the versions the hosts' scripts deploy", file.Path, image)
		}
	}
	if t.MaxBatchPercent != nil {
		if *t.MaxBatchPercent < 5 || *t.MaxBatchPercent > 100 {
			return p, fmt.Errorf("max batch %d%%: use 5 to 100", *t.MaxBatchPercent)
		}
		p.MaxBatchPercent = *t.MaxBatchPercent
	}
	if t.MaxUnhealthyPercent != nil {
		if *t.MaxUnhealthyPercent < 0 || *t.MaxUnhealthyPercent > 100 {
			return p, fmt.Errorf("max unhealthy %d%%: use 0 to 100", *t.MaxUnhealthyPercent)
		}
		p.MaxUnhealthyPercent = t.MaxUnhealthyPercent
	}
	if t.Pause != nil {
		p.Pause = *t.Pause
	}
	return p, nil
}
