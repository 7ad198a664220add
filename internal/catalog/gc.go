package catalog

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Policy is a retention policy. A version is removed only when every rule
// lets it go: it is not among the KeepNewest newest usable versions of its
// image, it is older than OlderThan, it is not the version of any channel,
// nothing runs it (fleet hosts, VMs and scale sets), it carries none of the
// ExcludeTags and is not replicated to any of the ExcludeRegions.
//
// Removal is staged: a version is first deprecated (its gallery version
// excluded from latest, with an end-of-life date Grace from now), and only a
// later run, once Grace has passed, deletes its copies in dependency order
// (gallery version, then managed image / managed disk, then blob, then
// on-prem copies). A copy that a remaining copy was made from and may still
// need (a gallery version's source, for adding regions) is kept.
type Policy struct {
	Image          string            `json:"image,omitempty"` // "" = every image
	KeepNewest     int               `json:"keep_newest"`
	OlderThan      time.Duration     `json:"older_than"`
	ExcludeTags    map[string]string `json:"exclude_tags,omitempty"` // value "" matches any value
	ExcludeRegions []string          `json:"exclude_regions,omitempty"`
	Grace          time.Duration     `json:"grace"`
}

// Validate checks a policy for values that would make no sense.
func (p Policy) Validate() error {
	if p.KeepNewest < 0 {
		return fmt.Errorf("%w: keep must be 0 or more", ErrInvalid)
	}
	if p.OlderThan < 0 || p.Grace < 0 {
		return fmt.Errorf("%w: ages must not be negative", ErrInvalid)
	}
	return nil
}

// InUse says a version (by reference, or by the resource id of one of its
// copies, e.g. a gallery image version id in a VM's imageReference) is used.
type InUse struct {
	Ref        Ref    `json:"ref,omitzero"`
	ResourceID string `json:"resource_id,omitempty"`
	By         string `json:"by"` // VM, scale set or host
}

// InUseSource answers which versions running machines reference (the Azure
// implementation lists VMs and scale sets; lives in internal/azure).
type InUseSource interface {
	VersionsInUse(ctx context.Context) ([]InUse, error)
}

// GC stages.
const (
	StageDeprecate = "deprecate"
	StageDelete    = "delete"
)

// GCStep is one action of a plan. Copy is nil for a catalog-only step (a
// version with no gallery version to deprecate).
type GCStep struct {
	Stage     string    `json:"stage"`
	Ref       Ref       `json:"ref"`
	Copy      *Copy     `json:"copy,omitempty"`
	EndOfLife time.Time `json:"end_of_life,omitzero"`
	Reason    string    `json:"reason"`
}

// GCKeep is a version (or one of its copies) the plan leaves alone, and why.
type GCKeep struct {
	Ref     Ref       `json:"ref"`
	Copy    *Copy     `json:"copy,omitempty"`
	Reasons []string  `json:"reasons"`
	Until   time.Time `json:"until,omitzero"` // deprecated: deletable from then on
}

// GCPlan is what a retention run would do, in execution order.
type GCPlan struct {
	Now     time.Time `json:"now"`
	Policy  Policy    `json:"policy"`
	Steps   []GCStep  `json:"steps"`
	Waiting []GCKeep  `json:"waiting,omitempty"` // deprecated, grace period not over
	Kept    []GCKeep  `json:"kept,omitempty"`
}

// Executor performs a plan's steps outside the catalog (internal/azure for
// gallery versions, managed images, disks and blobs; internal/onprem for
// library copies).
type Executor interface {
	// Deprecate excludes the gallery version from latest and sets its end of life.
	Deprecate(ctx context.Context, s GCStep) error
	// Delete removes the copy's resource; a resource already gone is success.
	Delete(ctx context.Context, s GCStep) error
}

// deleteOrder is the dependency order of deletion: nothing is deleted
// before what was made from it.
var deleteOrder = map[CopyKind]int{
	KindGalleryVersion: 0,
	KindManagedImage:   1,
	KindManagedDisk:    2,
	KindBlob:           3,
	KindOnprem:         4,
}

// needsSource reports whether a remaining copy of this kind may still need
// the copy it was made from (a gallery version needs its source to be
// replicated to more regions; a managed image or disk is a full copy).
func needsSource(k CopyKind) bool { return k == KindGalleryVersion || k == KindRegion }

// PlanGC computes a retention plan. It changes nothing.
func (c *Catalog) PlanGC(ctx context.Context, p Policy, inUse InUseSource) (*GCPlan, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	now := c.now().UTC()
	plan := &GCPlan{Now: now, Policy: p, Steps: []GCStep{}}

	// What is in use: the catalog's fleet and whatever the source reports.
	used := map[Ref][]string{}
	var usedResources []InUse
	hosts, err := c.Hosts(ctx, HostFilter{})
	if err != nil {
		return nil, err
	}
	for _, h := range hosts {
		if h.Image != "" {
			r := Ref{h.Image, h.Version}
			used[r] = append(used[r], "host "+h.Name)
		}
	}
	if inUse != nil {
		list, err := inUse.VersionsInUse(ctx)
		if err != nil {
			return nil, fmt.Errorf("ask which versions are in use (nothing was planned): %w", err)
		}
		for _, u := range list {
			if u.Ref.Image != "" {
				used[u.Ref] = append(used[u.Ref], u.By)
			}
			if u.ResourceID != "" {
				usedResources = append(usedResources, u)
			}
		}
	}

	var images []string
	if p.Image != "" {
		if _, err := c.imageID(ctx, c.db, p.Image); err != nil {
			return nil, err
		}
		images = []string{p.Image}
	} else {
		imgs, err := c.Images(ctx)
		if err != nil {
			return nil, err
		}
		for _, im := range imgs {
			images = append(images, im.Name)
		}
	}

	type cand struct {
		v      Version
		copies []Copy
	}
	var all []cand
	for _, img := range images {
		vs, err := c.Versions(ctx, img)
		if err != nil {
			return nil, err
		}
		for _, v := range vs {
			if v.Status == StatusDeleted {
				continue
			}
			cps, err := c.Copies(ctx, v.Ref())
			if err != nil {
				return nil, err
			}
			all = append(all, cand{v, cps})
		}
	}
	// Map resource ids in use to versions (ARM ids compare case-insensitively).
	for _, u := range usedResources {
		for _, cd := range all {
			for _, cp := range cd.copies {
				if strings.EqualFold(cp.ResourceID, u.ResourceID) {
					used[cd.v.Ref()] = append(used[cd.v.Ref()], u.By)
				}
			}
		}
	}

	// Per image, the KeepNewest newest usable (not revoked) versions.
	newest := map[Ref]int{}
	count := map[string]int{}
	for _, cd := range all { // all is newest first per image
		if cd.v.Status == StatusRevoked {
			continue
		}
		count[cd.v.Image]++
		newest[cd.v.Ref()] = count[cd.v.Image]
	}

	excludedRegion := map[string]bool{}
	for _, r := range p.ExcludeRegions {
		excludedRegion[strings.ToLower(r)] = true
	}

	var deprecate, deletions []cand
	removed := map[Ref]bool{}
	for _, cd := range all {
		v := cd.v
		var reasons []string
		if n, ok := newest[v.Ref()]; ok && n <= p.KeepNewest {
			reasons = append(reasons, fmt.Sprintf("among the %d newest", p.KeepNewest))
		}
		age := now.Sub(v.CreatedAt)
		if !v.BuildTime.IsZero() && v.BuildTime.Before(v.CreatedAt) {
			age = now.Sub(v.BuildTime)
		}
		if age < p.OlderThan {
			reasons = append(reasons, fmt.Sprintf("younger than %s", FormatAge(p.OlderThan)))
		}
		for _, ch := range v.Channels {
			reasons = append(reasons, "version of channel "+ch)
		}
		if by := used[v.Ref()]; len(by) > 0 {
			sort.Strings(by)
			reasons = append(reasons, "in use by "+strings.Join(dedupe(by), ", "))
		}
		for k, want := range p.ExcludeTags {
			if got, ok := v.Tags[k]; ok && (want == "" || got == want) {
				reasons = append(reasons, fmt.Sprintf("tag %s=%s is excluded", k, got))
			}
		}
		for _, cp := range cd.copies {
			if cp.State != StateDeleted && (cp.Kind == KindRegion || cp.Kind == KindGalleryVersion) && excludedRegion[strings.ToLower(cp.Location)] {
				reasons = append(reasons, "replicated to excluded region "+cp.Location)
				break
			}
		}
		if len(reasons) > 0 {
			plan.Kept = append(plan.Kept, GCKeep{Ref: v.Ref(), Reasons: reasons})
			continue
		}
		switch {
		case v.DeprecatedAt.IsZero():
			deprecate = append(deprecate, cd)
		case now.Before(v.DeprecatedAt.Add(p.Grace)):
			until := v.DeprecatedAt.Add(p.Grace)
			plan.Waiting = append(plan.Waiting, GCKeep{Ref: v.Ref(), Until: until,
				Reasons: []string{fmt.Sprintf("deprecated %s, grace period of %s not over", v.DeprecatedAt.Format(time.RFC3339), FormatAge(p.Grace))}})
		default:
			deletions = append(deletions, cd)
			removed[v.Ref()] = true
		}
	}

	// Stage 1: deprecate.
	eol := now.Add(p.Grace)
	for _, cd := range deprecate {
		n := 0
		for _, cp := range cd.copies {
			if cp.Kind == KindGalleryVersion && cp.State != StateDeleted {
				cp := cp
				plan.Steps = append(plan.Steps, GCStep{Stage: StageDeprecate, Ref: cd.v.Ref(), Copy: &cp, EndOfLife: eol,
					Reason: "exclude from latest, end of life " + eol.Format(time.RFC3339)})
				n++
			}
		}
		if n == 0 {
			plan.Steps = append(plan.Steps, GCStep{Stage: StageDeprecate, Ref: cd.v.Ref(), EndOfLife: eol,
				Reason: "no gallery version: mark deprecated in the catalog"})
		}
	}

	// Stage 2: delete, keeping sources that remaining copies still need.
	remaining := map[int64]Copy{}
	for _, cd := range all {
		if removed[cd.v.Ref()] {
			continue
		}
		for _, cp := range cd.copies {
			if cp.State != StateDeleted {
				remaining[cp.ID] = cp
			}
		}
	}
	keepCopy := map[int64]string{}
	for changed := true; changed; {
		changed = false
		for _, cd := range deletions {
			for _, cp := range cd.copies {
				if _, done := keepCopy[cp.ID]; done || cp.State == StateDeleted {
					continue
				}
				for _, r := range remaining {
					if (r.ParentID == cp.ID && needsSource(r.Kind)) || (r.ID != cp.ID && r.Kind == cp.Kind && strings.EqualFold(r.ResourceID, cp.ResourceID)) {
						keepCopy[cp.ID] = fmt.Sprintf("source still needed by %s %s of %s", r.Kind, r.ResourceID, r.Ref)
						remaining[cp.ID] = cp
						changed = true
						break
					}
				}
			}
		}
	}
	var dels []GCStep
	for _, cd := range deletions {
		for _, cp := range cd.copies {
			cp := cp
			if cp.State == StateDeleted {
				continue
			}
			if why, ok := keepCopy[cp.ID]; ok {
				plan.Kept = append(plan.Kept, GCKeep{Ref: cd.v.Ref(), Copy: &cp, Reasons: []string{why}})
				continue
			}
			if _, ok := deleteOrder[cp.Kind]; !ok {
				continue // regions go with their gallery version; build artifacts are not the catalog's to delete
			}
			dels = append(dels, GCStep{Stage: StageDelete, Ref: cd.v.Ref(), Copy: &cp,
				Reason: fmt.Sprintf("deprecated %s, grace period over", cd.v.DeprecatedAt.Format(time.RFC3339))})
		}
	}
	sort.SliceStable(dels, func(i, j int) bool { return deleteOrder[dels[i].Copy.Kind] < deleteOrder[dels[j].Copy.Kind] })
	plan.Steps = append(plan.Steps, dels...)
	// Versions whose every copy is already gone still need the catalog step
	// (not those keeping a copy another version needs).
	for _, cd := range deletions {
		has := false
		for _, s := range dels {
			if s.Ref == cd.v.Ref() {
				has = true
			}
		}
		for _, cp := range cd.copies {
			if _, ok := keepCopy[cp.ID]; ok {
				has = true
			}
		}
		if !has {
			plan.Steps = append(plan.Steps, GCStep{Stage: StageDelete, Ref: cd.v.Ref(), Reason: "nothing left outside the catalog: mark deleted"})
		}
	}
	return plan, nil
}

func dedupe(s []string) []string {
	var out []string
	for i, x := range s {
		if i == 0 || x != s[i-1] {
			out = append(out, x)
		}
	}
	return out
}

// GCResult is what a retention run did.
type GCResult struct {
	RunID   int64    `json:"run_id"`
	Done    []GCStep `json:"done"`
	Failed  []string `json:"failed,omitempty"`
	Skipped []string `json:"skipped,omitempty"` // not attempted because a dependent failed
}

// RunGC holds the run lock of every image concerned, plans under the locks
// (so the plan cannot go stale while it runs), then executes the plan's
// steps in order through exec and records the outcome (copy states, version
// status, a gc run with a step per action). A failed deletion stops the
// deletion of that copy's sources; all failures are reported together.
func (c *Catalog) RunGC(ctx context.Context, p Policy, inUse InUseSource, exec Executor, by string) (*GCPlan, *GCResult, error) {
	if exec == nil {
		return nil, nil, fmt.Errorf("%w: no executor to apply the plan", ErrInvalid)
	}
	var images []string
	if p.Image != "" {
		images = []string{p.Image}
	} else {
		imgs, err := c.Images(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, im := range imgs {
			images = append(images, im.Name) // sorted: locks are always taken in the same order
		}
	}
	var locks []*Lock
	defer func() {
		for i := len(locks) - 1; i >= 0; i-- {
			uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			_ = locks[i].Unlock(uctx)
			cancel()
		}
	}()
	for _, img := range images {
		l, err := c.LockImage(ctx, img, by)
		if err != nil {
			return nil, nil, err
		}
		locks = append(locks, l)
	}
	plan, err := c.PlanGC(ctx, p, inUse)
	if err != nil {
		return nil, nil, err
	}
	run, err := c.StartRun(ctx, Run{Kind: RunGC, Image: p.Image, By: by})
	if err != nil {
		return plan, nil, err
	}
	for _, l := range locks {
		if err := l.SetRun(ctx, run.ID); err != nil {
			_ = c.FinishRun(ctx, run.ID, err)
			return plan, nil, err
		}
	}
	res := &GCResult{RunID: run.ID}
	failedCopies := map[int64]bool{}
	var errs []error
	deprecatedOK := map[Ref]bool{}
	deprecatedBad := map[Ref]bool{}
	for _, s := range plan.Steps {
		for _, l := range locks {
			if err := l.Err(); err != nil {
				errs = append(errs, err)
				_ = c.FinishRun(ctx, run.ID, errors.Join(errs...))
				return plan, res, errors.Join(errs...)
			}
		}
		name := s.Stage + " " + s.Ref.String()
		var ids []string
		if s.Copy != nil {
			name += " " + string(s.Copy.Kind)
			ids = []string{s.Copy.ResourceID}
		}
		if s.Stage == StageDelete && s.Copy != nil {
			if dep := c.failedDependent(plan, s, failedCopies); dep != "" {
				failedCopies[s.Copy.ID] = true
				msg := fmt.Sprintf("%s: kept because %s was not deleted", name, dep)
				res.Skipped = append(res.Skipped, msg)
				_, _ = c.AddStep(ctx, run.ID, Step{Name: name, Status: StepSkipped, Detail: msg, ResourceIDs: ids})
				continue
			}
		}
		var err error
		switch {
		case s.Copy == nil:
		case s.Stage == StageDeprecate:
			err = exec.Deprecate(ctx, s)
		default:
			err = exec.Delete(ctx, s)
		}
		if err == nil {
			err = c.recordGCStep(ctx, s)
		}
		if err != nil {
			if s.Copy != nil {
				failedCopies[s.Copy.ID] = true
			}
			if s.Stage == StageDeprecate {
				deprecatedBad[s.Ref] = true
			}
			msg := fmt.Sprintf("%s: %v", name, err)
			res.Failed = append(res.Failed, msg)
			errs = append(errs, errors.New(msg))
			_, _ = c.AddStep(ctx, run.ID, Step{Name: name, Status: RunFailed, Detail: err.Error(), ResourceIDs: ids})
			continue
		}
		if s.Stage == StageDeprecate {
			deprecatedOK[s.Ref] = true
		}
		res.Done = append(res.Done, s)
		_, _ = c.AddStep(ctx, run.ID, Step{Name: name, Status: RunSucceeded, Detail: s.Reason, ResourceIDs: ids})
	}
	for ref := range deprecatedOK {
		if deprecatedBad[ref] {
			continue
		}
		if err := c.markVersion(ctx, ref, StatusDeprecated, plan.Now, plan.Now.Add(p.Grace)); err != nil {
			errs = append(errs, err)
		}
	}
	if err := c.finishDeletions(ctx, plan); err != nil {
		errs = append(errs, err)
	}
	err = errors.Join(errs...)
	if ferr := c.FinishRun(ctx, run.ID, err); ferr != nil && err == nil {
		err = ferr
	}
	return plan, res, err
}

// failedDependent names a copy made from s.Copy whose deletion failed or was
// skipped in this run, if any.
func (c *Catalog) failedDependent(plan *GCPlan, s GCStep, failed map[int64]bool) string {
	for _, o := range plan.Steps {
		if o.Copy != nil && o.Copy.ParentID == s.Copy.ID && failed[o.Copy.ID] {
			return fmt.Sprintf("%s %s", o.Copy.Kind, o.Copy.ResourceID)
		}
	}
	return ""
}

func (c *Catalog) recordGCStep(ctx context.Context, s GCStep) error {
	if s.Copy == nil {
		return nil
	}
	if s.Stage == StageDeprecate {
		return c.SetCopyState(ctx, s.Copy.ID, StateDeprecated)
	}
	return c.tx(ctx, func(tx *sql.Tx) error {
		now := c.nowText()
		if _, err := tx.ExecContext(ctx, c.q("UPDATE copies SET state = ?, updated_at = ? WHERE id = ?"), StateDeleted, now, s.Copy.ID); err != nil {
			return err
		}
		if s.Copy.Kind == KindGalleryVersion { // its regions go with it
			if _, err := tx.ExecContext(ctx, c.q("UPDATE copies SET state = ?, updated_at = ? WHERE parent_copy_id = ? AND kind = ?"),
				StateDeleted, now, s.Copy.ID, string(KindRegion)); err != nil {
				return err
			}
		}
		return nil
	})
}

func (c *Catalog) markVersion(ctx context.Context, ref Ref, status string, deprecatedAt, eol time.Time) error {
	return c.tx(ctx, func(tx *sql.Tx) error {
		id, err := c.versionID(ctx, tx, ref)
		if err != nil {
			return err
		}
		// A revoked version keeps its status; the dates still stage its removal.
		_, err = tx.ExecContext(ctx, c.q(`UPDATE versions SET deprecated_at = ?, end_of_life = ?,
			status = CASE WHEN status = 'active' THEN ? ELSE status END WHERE id = ?`),
			fmtTime(deprecatedAt), fmtTime(eol), status, id)
		if err != nil {
			return fmt.Errorf("mark %s %s: %w", ref, status, err)
		}
		return nil
	})
}

// finishDeletions marks deleted the versions of the plan's delete stage
// whose copies (other than the build artifact) are all gone.
func (c *Catalog) finishDeletions(ctx context.Context, plan *GCPlan) error {
	seen := map[Ref]bool{}
	var errs []error
	for _, s := range plan.Steps {
		if s.Stage != StageDelete || seen[s.Ref] {
			continue
		}
		seen[s.Ref] = true
		cps, err := c.Copies(ctx, s.Ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		left := false
		for _, cp := range cps {
			if cp.Kind != KindArtifact && cp.State != StateDeleted {
				left = true
			}
		}
		if left {
			continue
		}
		if _, err := c.db.ExecContext(ctx, c.q(`UPDATE versions SET status = 'deleted' WHERE id = (
			SELECT v.id FROM versions v JOIN images i ON i.id = v.image_id WHERE i.name = ? AND v.version = ?)`), s.Ref.Image, s.Ref.Version); err != nil {
			errs = append(errs, fmt.Errorf("mark %s deleted: %w", s.Ref, err))
		}
	}
	return errors.Join(errs...)
}
