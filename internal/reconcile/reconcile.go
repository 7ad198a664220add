// Package reconcile closes the loop: it evaluates each image's rebuild
// policy (the pipeline file's rebuild blocks) against the catalog — the
// fleet's drift reports, revocations, parents, a schedule — and decides, with
// a reason a person can read, whether to rebuild the image from source now,
// wait (cool-down, daily cap, a run in progress, drift not yet persistent),
// or stay stopped (the last rebuild failed). Decide changes nothing; Record
// keeps the decisions in the catalog and emits them as events; Rebuild
// carries one out through a Runner (build, publish staged, test, promote).
package reconcile

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/events"
)

// ActionNone: no trigger matched; nothing is recorded.
const ActionNone = "none"

// Triggers.
const (
	TriggerDrift    = "drift"
	TriggerRevoke   = "revoke"
	TriggerParent   = "parent"
	TriggerSchedule = "schedule"
)

// Guards: what holds a matched trigger back (kept in a wait decision's state).
const (
	GuardPersist  = "persist"     // drift threshold met, but not yet for long enough
	GuardRunning  = "in-progress" // a rebuild of the image is running
	GuardLock     = "lock"        // a run holds the image lock
	GuardCooldown = "cooldown"    // the last rebuild is too recent
	GuardCap      = "cap"         // max_per_day reached
)

// Decision is what the reconciler decided for one image.
type Decision struct {
	Image    string `json:"image"`
	Action   string `json:"decision"` // rebuild, wait, stopped, none
	Trigger  string `json:"trigger,omitempty"`
	Guard    string `json:"guard,omitempty"`
	Reason   string `json:"reason"`
	Channel  string `json:"channel"`           // the channel a rebuild is promoted to
	Current  string `json:"current,omitempty"` // the version the decision is about
	Repeated bool   `json:"repeated,omitempty"`
	// ID is the catalog record (0: not recorded: dry run, none, or repeated).
	ID int64 `json:"id,omitempty"`
	// Drift is the drift count behind a drift trigger.
	Drift *DriftCount `json:"drift,omitempty"`

	driftSince time.Time // the drift observation to keep (zero: clear it)
	cooldown   time.Duration
}

// DriftCount is how many of a channel's hosts count as drifted.
type DriftCount struct {
	Channel string        `json:"channel"`
	Drifted int           `json:"drifted"`
	Hosts   int           `json:"hosts"`
	Needed  int           `json:"needed"`
	Met     bool          `json:"met"`
	Since   time.Time     `json:"since,omitzero"` // since when the reconciler has seen it met
	For     time.Duration `json:"for_ns,omitempty"`
}

// Reconciler evaluates the rebuild policies of a pipeline file.
type Reconciler struct {
	File    *config.File
	Catalog *catalog.Catalog
	Now     func() time.Time // default time.Now
	Events  *events.Emitter  // nil: decisions are recorded but not emitted
}

func (r *Reconciler) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

// Decide evaluates every image that has a rebuild policy, in file order. It
// reads the catalog and changes nothing (imgpipe reconcile --dry-run).
func (r *Reconciler) Decide(ctx context.Context) ([]Decision, error) {
	var out []Decision
	for _, img := range r.File.Images {
		p := r.File.Rebuild(img.Name)
		if p == nil {
			continue
		}
		d, err := r.decide(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("reconcile %s: %w", img.Name, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// history is what the catalog remembers of an image's loop.
type history struct {
	lastRebuild *catalog.Decision // newest rebuild decision
	rebuildsDay int               // rebuild decisions since 00:00 UTC
	stop        *catalog.Decision // the stopped decision in force, if any
}

func (r *Reconciler) history(ctx context.Context, image string, now time.Time) (history, error) {
	var h history
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	rebuilds, err := r.Catalog.Decisions(ctx, catalog.DecisionFilter{Image: image, Decision: catalog.DecisionRebuild, Limit: 1})
	if err != nil {
		return h, err
	}
	if len(rebuilds) > 0 {
		h.lastRebuild = &rebuilds[0]
	}
	today, err := r.Catalog.Decisions(ctx, catalog.DecisionFilter{Image: image, Decision: catalog.DecisionRebuild, Since: day, Limit: 1000})
	if err != nil {
		return h, err
	}
	h.rebuildsDay = len(today)
	// the newest of stopped / resume decides whether the loop is stopped
	var last *catalog.Decision
	for _, kind := range []string{catalog.DecisionStopped, catalog.DecisionResume} {
		ds, err := r.Catalog.Decisions(ctx, catalog.DecisionFilter{Image: image, Decision: kind, Limit: 1})
		if err != nil {
			return h, err
		}
		if len(ds) > 0 && (last == nil || ds[0].At.After(last.At) || (ds[0].At.Equal(last.At) && ds[0].ID > last.ID)) {
			last = &ds[0]
		}
	}
	if last != nil && last.Decision == catalog.DecisionStopped {
		h.stop = last
	}
	return h, nil
}

func (r *Reconciler) decide(ctx context.Context, p *config.Rebuild) (Decision, error) {
	now := r.now()
	d := Decision{Image: p.Image, Channel: p.PromoteTo, cooldown: p.Cooldown}
	h, err := r.history(ctx, p.Image, now)
	if err != nil {
		return d, err
	}
	cur, versions, err := r.current(ctx, p)
	if err != nil {
		return d, err
	}
	if cur != nil {
		d.Current = cur.Version
	}
	if h.stop != nil {
		// A version published after the stop (a person fixed it) resumes the loop.
		newer := false
		for _, v := range versions {
			if v.CreatedAt.After(h.stop.At) {
				newer = true
			}
		}
		if !newer {
			d.Action, d.Reason = catalog.DecisionStopped, h.stop.Reason
			if ds, err := r.driftObservation(ctx, p, cur, now); err == nil && ds != nil {
				d.driftSince = ds.Since // keep observing while stopped
			}
			return d, nil
		}
	}

	var reasons, nots []string
	trigger := ""
	fire := func(kind, reason string) {
		if trigger == "" {
			trigger = kind
		}
		reasons = append(reasons, reason)
	}
	persistWait := ""
	if cur == nil {
		d.Action, d.Reason = ActionNone, fmt.Sprintf("%s is not in the catalog yet: publish it once (imgpipe publish) before the loop can rebuild it", p.Image)
		return d, nil
	}
	if p.OnRevoke {
		if cur.Status == catalog.StatusRevoked {
			fire(TriggerRevoke, fmt.Sprintf("%s revoked", cur.Ref()))
		} else {
			nots = append(nots, fmt.Sprintf("%s not revoked", cur.Ref()))
		}
	}
	if p.OnParent {
		if cur.Parent == nil {
			nots = append(nots, fmt.Sprintf("%s records no parent", cur.Ref()))
		} else {
			newest, err := r.newestActive(ctx, cur.Parent.Image)
			if err != nil {
				return d, err
			}
			if newest != "" && catalog.CompareVersions(newest, cur.Parent.Version) > 0 {
				fire(TriggerParent, fmt.Sprintf("parent %s@%s is newer than %s", cur.Parent.Image, newest, cur.Parent.Version))
			} else {
				nots = append(nots, fmt.Sprintf("parent %s is the newest", cur.Parent))
			}
		}
	}
	if p.OnDrift != nil {
		dc, err := r.driftObservation(ctx, p, cur, now)
		if err != nil {
			return d, err
		}
		d.Drift = dc
		d.driftSince = dc.Since
		held := now.Sub(dc.Since)
		switch {
		case !dc.Met:
			nots = append(nots, fmt.Sprintf("%d of %d %s hosts drifted (%d needed)", dc.Drifted, dc.Hosts, dc.Channel, dc.Needed))
		case held >= p.OnDrift.For:
			if p.OnDrift.For > 0 {
				fire(TriggerDrift, fmt.Sprintf("%d of %d %s hosts drifted for %s", dc.Drifted, dc.Hosts, dc.Channel, fmtDur(held)))
			} else {
				fire(TriggerDrift, fmt.Sprintf("%d of %d %s hosts drifted", dc.Drifted, dc.Hosts, dc.Channel))
			}
		default:
			persistWait = fmt.Sprintf("%d of %d %s hosts drifted since %s, the policy wants %s (until %s)",
				dc.Drifted, dc.Hosts, dc.Channel, fmtTime(dc.Since), fmtDur(p.OnDrift.For), fmtTime(dc.Since.Add(p.OnDrift.For)))
		}
	}
	if p.ScheduleSpec != nil {
		basis := cur.CreatedAt
		if h.lastRebuild != nil && h.lastRebuild.At.After(basis) {
			basis = h.lastRebuild.At
		}
		next := p.ScheduleSpec.Next(basis)
		if !next.After(now) {
			fire(TriggerSchedule, fmt.Sprintf("schedule %s due (%s)", p.Schedule, fmtTime(next)))
		} else {
			nots = append(nots, fmt.Sprintf("schedule %s next due %s", p.Schedule, fmtTime(next)))
		}
	}
	if trigger == "" && persistWait != "" {
		d.Action, d.Trigger, d.Guard, d.Reason = catalog.DecisionWait, TriggerDrift, GuardPersist, persistWait+": wait"
		return d, nil
	}
	if trigger == "" {
		d.Action, d.Reason = ActionNone, strings.Join(nots, "; ")+": nothing to do"
		return d, nil
	}
	d.Trigger = trigger
	why := strings.Join(reasons, "; ")
	guard, held, err := r.guard(ctx, p, h, now)
	if err != nil {
		return d, err
	}
	if guard != "" {
		d.Action, d.Guard, d.Reason = catalog.DecisionWait, guard, why+"; "+held+": wait"
		return d, nil
	}
	d.Action, d.Reason = catalog.DecisionRebuild, why+": rebuild"
	return d, nil
}

// guard says what holds a rebuild back, if anything.
func (r *Reconciler) guard(ctx context.Context, p *config.Rebuild, h history, now time.Time) (string, string, error) {
	running, ok, err := r.Catalog.RunningRebuild(ctx, p.Image)
	if err != nil {
		return "", "", err
	}
	if ok {
		return GuardRunning, fmt.Sprintf("a rebuild is running (decision %d by %s since %s)", running.ID, running.Claimant, fmtTime(running.At)), nil
	}
	holder, held, err := r.Catalog.Holder(ctx, p.Image)
	if err != nil {
		return "", "", err
	}
	if held {
		return GuardLock, fmt.Sprintf("a run holds the image lock (%s)", holder), nil
	}
	if h.lastRebuild != nil && p.Cooldown > 0 {
		if until := h.lastRebuild.At.Add(p.Cooldown); until.After(now) {
			return GuardCooldown, fmt.Sprintf("cool-down until %s", fmtTime(until)), nil
		}
	}
	if h.rebuildsDay >= p.MaxPerDay {
		return GuardCap, fmt.Sprintf("daily cap %d reached (until 00:00 UTC)", p.MaxPerDay), nil
	}
	return "", "", nil
}

// current is the version the policy is about: the one its channel points
// at, else the newest version of the image (nil: none). versions lists all.
func (r *Reconciler) current(ctx context.Context, p *config.Rebuild) (*catalog.Version, []catalog.Version, error) {
	versions, err := r.Catalog.Versions(ctx, p.Image)
	if err != nil {
		if isNotFound(err) {
			return nil, nil, nil
		}
		return nil, nil, err
	}
	chs, err := r.Catalog.Channels(ctx, p.Image)
	if err != nil {
		return nil, nil, err
	}
	want := ""
	for _, ch := range chs {
		if ch.Name == p.PromoteTo {
			want = ch.Version
		}
	}
	var cur *catalog.Version
	for i := range versions {
		v := &versions[i]
		if want != "" {
			if v.Version == want {
				cur = v
			}
			continue
		}
		if cur == nil || catalog.CompareVersions(v.Version, cur.Version) > 0 {
			cur = v
		}
	}
	return cur, versions, nil
}

func (r *Reconciler) newestActive(ctx context.Context, image string) (string, error) {
	vs, err := r.Catalog.Versions(ctx, image)
	if err != nil {
		if isNotFound(err) {
			return "", nil
		}
		return "", err
	}
	newest := ""
	for _, v := range vs {
		if v.Status == catalog.StatusActive && (newest == "" || catalog.CompareVersions(v.Version, newest) > 0) {
			newest = v.Version
		}
	}
	return newest, nil
}

// driftObservation counts the drifted hosts of the policy's channel and
// says since when the threshold has held: since the first report of the
// host whose drift made the count reach the threshold (the fleet's per-host
// history: each host's drifted-since). A host whose history does not say
// (reported before the history was kept) counts from the reconciler's own
// first evaluation that saw the threshold met, kept by Record and reset by
// any evaluation that saw it not met.
func (r *Reconciler) driftObservation(ctx context.Context, p *config.Rebuild, cur *catalog.Version, now time.Time) (*DriftCount, error) {
	od := p.OnDrift
	if od == nil {
		return nil, nil
	}
	dc := &DriftCount{Channel: od.Channel, For: od.For}
	// the channel's hosts: hosts of the image running a version the channel pointed at
	inChannel := map[string]bool{}
	proms, err := r.Catalog.Promotions(ctx, p.Image, od.Channel)
	if err != nil && !isNotFound(err) {
		return nil, err
	}
	for _, pr := range proms {
		inChannel[pr.To] = true
	}
	if cur != nil && od.Channel == p.PromoteTo {
		inChannel[cur.Version] = true
	}
	hosts, err := r.Catalog.Hosts(ctx, catalog.HostFilter{Image: p.Image})
	if err != nil {
		return nil, err
	}
	history, err := r.Catalog.DriftedSinceOf(ctx, p.Image)
	if err != nil {
		return nil, err
	}
	var sinces []time.Time // of the drifted hosts; zero: the history does not say
	for _, h := range hosts {
		if !inChannel[h.Version] {
			continue
		}
		dc.Hosts++
		if Counts(od, h.DriftSummary) {
			dc.Drifted++
			sinces = append(sinces, history[h.Name])
		}
	}
	if od.Hosts > 0 {
		dc.Needed = od.Hosts
	} else {
		dc.Needed = int(math.Ceil(od.Share * float64(dc.Hosts)))
		if dc.Needed < 1 {
			dc.Needed = 1
		}
	}
	dc.Met = dc.Hosts > 0 && dc.Drifted >= dc.Needed
	if !dc.Met {
		return dc, nil
	}
	observed, err := r.Catalog.DriftSince(ctx, p.Image, od.Channel)
	if err != nil {
		return nil, err
	}
	if observed.IsZero() || observed.After(now) {
		observed = now
	}
	for i, s := range sinces {
		if s.IsZero() || s.After(now) {
			sinces[i] = observed
		}
	}
	slices.SortFunc(sinces, func(a, b time.Time) int { return a.Compare(b) })
	// the threshold has held since the needed-th host began to drift
	dc.Since = sinces[dc.Needed-1]
	return dc, nil
}

// driftSummary is the part of a host's stored drift summary (the fleet
// server's host state) the policy reads.
type driftSummary struct {
	Drifted bool `json:"drifted"`
	Summary *struct {
		FilesAdded   int `json:"files_added"`
		FilesRemoved int `json:"files_removed"`
		FilesChanged int `json:"files_changed"`
		Packages     int `json:"packages"`
	} `json:"summary"`
}

// Counts tells whether a host with this drift summary counts as drifted
// under the policy: with neither changed_files nor packages set, any drift
// counts; changed_files = N counts hosts with at least N files added,
// removed or changed (beyond the baseline's ignore rules, which the agent
// applied); packages = true counts hosts with any package change.
func Counts(od *config.OnDrift, raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	var s driftSummary
	if json.Unmarshal(raw, &s) != nil || !s.Drifted {
		return false
	}
	if od.ChangedFiles == 0 && !od.Packages {
		return true
	}
	if s.Summary == nil {
		return false // drifted, but the report says nothing countable (an error report)
	}
	if od.ChangedFiles > 0 && s.Summary.FilesAdded+s.Summary.FilesRemoved+s.Summary.FilesChanged >= od.ChangedFiles {
		return true
	}
	return od.Packages && s.Summary.Packages > 0
}

// Record keeps the wait and stopped decisions in the catalog and emits them
// as events, and keeps the drift observations. A decision equal to the
// image's last recorded one (same decision, trigger and guard) inside the
// policy's cool-down is not recorded again (Repeated). Rebuild decisions are
// recorded when Rebuild claims them; none decisions are not recorded.
func (r *Reconciler) Record(ctx context.Context, ds []Decision) ([]Decision, error) {
	out := make([]Decision, len(ds))
	copy(out, ds)
	now := r.now()
	for i := range out {
		d := &out[i]
		if pol := r.File.Rebuild(d.Image); pol != nil && pol.OnDrift != nil {
			if err := r.Catalog.SetDriftSince(ctx, d.Image, pol.OnDrift.Channel, d.driftSince); err != nil {
				return out, err
			}
		}
		if d.Action != catalog.DecisionWait && d.Action != catalog.DecisionStopped {
			continue
		}
		last, err := r.Catalog.Decisions(ctx, catalog.DecisionFilter{Image: d.Image, Limit: 1})
		if err != nil {
			return out, err
		}
		if len(last) > 0 && last[0].Decision == d.Action && last[0].Trigger == d.Trigger &&
			(d.Action == catalog.DecisionStopped || last[0].State == d.Guard) && now.Before(last[0].At.Add(d.cooldown)) {
			d.Repeated = true
			continue
		}
		rec, err := r.Catalog.RecordDecision(ctx, catalog.Decision{Image: d.Image, Decision: d.Action, Trigger: d.Trigger, Reason: d.Reason, At: now, State: d.Guard})
		if err != nil {
			return out, err
		}
		d.ID = rec.ID
		if err := r.emit(ctx, rec, d.Current); err != nil {
			return out, err
		}
	}
	return out, nil
}

// emit queues the event of a recorded decision; its id is derived from the
// record (and its state), so a retry never queues it twice.
func (r *Reconciler) emit(ctx context.Context, rec catalog.Decision, current string) error {
	if r.Events == nil {
		return nil
	}
	subject := rec.Image
	if current != "" {
		subject = rec.Image + "@" + current
	}
	id := fmt.Sprintf("reconcile-%d-%s-%s", rec.ID, rec.Decision, rec.State)
	if _, err := r.Events.Emit(ctx, id, events.TypeReconcile, subject, rec); err != nil {
		return fmt.Errorf("emit the %s decision for %s: %w", rec.Decision, rec.Image, err)
	}
	return nil
}

func isNotFound(err error) bool { return err != nil && errors.Is(err, catalog.ErrNotFound) }

func fmtTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04Z") }

// fmtDur prints 2h, 1h30m, 45m, 30s.
func fmtDur(d time.Duration) string {
	if d >= time.Minute {
		d = d.Round(time.Minute)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Sorted returns the decisions with the ones that act first (rebuild, stopped, wait, none).
func Sorted(ds []Decision) []Decision {
	rank := map[string]int{catalog.DecisionRebuild: 0, catalog.DecisionStopped: 1, catalog.DecisionWait: 2, ActionNone: 3}
	out := append([]Decision(nil), ds...)
	sort.SliceStable(out, func(i, j int) bool { return rank[out[i].Action] < rank[out[j].Action] })
	return out
}
