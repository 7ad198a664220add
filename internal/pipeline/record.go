package pipeline

// What the engine records in the catalog: the run and its steps, the
// version with its provenance, and its lineage, from what each
// destination's apply returned (nothing is read back).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
	"imgpipe/internal/semver"
	"imgpipe/internal/source"
)

// recorder records the steps of a run in the catalog (when there is one
// and a run was started) and tells Engine.AfterStep.
type recorder struct {
	e     *Engine
	runID int64
	dest  string
}

func (r *recorder) RecordStep(ctx context.Context, s Step) error {
	if s.Destination == "" {
		s.Destination = r.dest
	}
	var err error
	if r.e.Catalog != nil && r.runID != 0 {
		// what happened is recorded even when the run was interrupted
		err = addStep(context.WithoutCancel(ctx), r.e.Catalog, r.runID, s)
	}
	if r.e.AfterStep != nil {
		r.e.AfterStep(ctx, s)
	}
	return err
}

// addStep records one step of a run; a step that removed a resource marks
// its copies deleted.
func addStep(ctx context.Context, cat *catalog.Catalog, runID int64, s Step) error {
	status := catalog.RunSucceeded
	if s.Failed {
		status = catalog.RunFailed
	}
	detail := s.Error
	if len(s.Fingerprint) > 0 {
		b, _ := json.Marshal(s.Fingerprint)
		if detail != "" {
			detail += " "
		}
		detail += string(b)
	}
	st := catalog.Step{Name: strings.TrimSpace(fmt.Sprintf("%s %s %s", s.Action, s.Kind, s.Name)), Status: status, Detail: detail, StartedAt: s.Started, EndedAt: s.Ended}
	if s.ResourceID != "" {
		st.ResourceIDs = []string{s.ResourceID}
	}
	if _, err := cat.AddStep(ctx, runID, st); err != nil {
		return err
	}
	if s.Deleted && !s.Failed && s.ResourceID != "" {
		return MarkDeleted(ctx, cat, catalog.CopyKind(s.Kind), s.ResourceID)
	}
	return nil
}

// MarkDeleted marks the catalog copies of a removed resource deleted: a
// gallery version with its region copies, so promote no longer takes it
// for published.
func MarkDeleted(ctx context.Context, cat *catalog.Catalog, kind catalog.CopyKind, id string) error {
	cps, err := cat.FindCopies(ctx, kind, id)
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if err := cat.SetCopyState(ctx, cp.ID, catalog.StateDeleted); err != nil {
			return err
		}
		if kind != catalog.KindGalleryVersion {
			continue
		}
		all, err := cat.Copies(ctx, cp.Ref)
		if err != nil {
			return err
		}
		for _, r := range all {
			if r.Kind == catalog.KindRegion && r.ParentID == cp.ID {
				if err := cat.SetCopyState(ctx, r.ID, catalog.StateDeleted); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// lineage records the version and its copies, the version (with its
// artifact) on the first copies to record.
type lineage struct {
	e    *Engine
	plan *Plan
	art  *catalog.Copy
}

func (l *lineage) record(ctx context.Context, copies []Copy) error {
	cat := l.e.Catalog
	if cat == nil || len(copies) == 0 {
		return nil
	}
	if l.art == nil {
		art, err := recordVersion(ctx, cat, l.plan)
		if err != nil {
			return err
		}
		l.art = &art
	}
	ref := catalog.Ref{Image: l.plan.Image, Version: l.plan.Version}
	ids := map[string]int64{}
	for _, c := range copies {
		parent := l.art.ID
		if c.Parent != "" {
			id, ok := ids[c.Parent]
			if !ok {
				return fmt.Errorf("internal error: copy %s names parent %s, which is not among the copies before it", c.ID, c.Parent)
			}
			parent = id
		}
		var detail json.RawMessage
		if len(c.Detail) > 0 {
			detail, _ = json.Marshal(c.Detail)
		}
		got, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: c.Kind, Location: c.Location, ResourceID: c.ID, Fingerprint: c.Fingerprint,
			State: c.State, ParentID: parent, Detail: detail})
		if err != nil {
			return err
		}
		ids[c.ID] = got.ID
	}
	return nil
}

// recordVersion records the image, the version with its provenance and the
// artifact copy. Re-running with the same artifact is a no-op.
func recordVersion(ctx context.Context, cat *catalog.Catalog, p *Plan) (catalog.Copy, error) {
	return RecordArtifact(ctx, cat, p.request.Image, p.Version, p.Source)
}

// RecordArtifact records img's version made from src: the image, the
// version with its provenance and the artifact copy (idempotent).
func RecordArtifact(ctx context.Context, cat *catalog.Catalog, img *config.Image, version string, src *source.Info) (catalog.Copy, error) {
	ref := catalog.Ref{Image: img.Name, Version: version}
	gen := src.Generation
	if gen == "" {
		gen = img.HyperVGeneration
	}
	if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: img.Name, Version: version, Provenance: catalog.Provenance{
		ArtifactSHA256: src.SHA256, HyperVGeneration: gen, OSType: img.OSType,
	}}); err != nil {
		return catalog.Copy{}, err
	}
	abs, err := filepath.Abs(src.Path)
	if err != nil {
		abs = src.Path
	}
	detail, _ := json.Marshal(map[string]string{"digest": src.Digest})
	return cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: abs, Fingerprint: src.Digest,
		State: catalog.StatePresent, Detail: detail})
}

// RecordLibraryAdd records a disk added to an on-prem library outside a
// publish (imgpipe onprem add): the version, its artifact and the library
// copy, so promote accepts the version for the library's channel.
func RecordLibraryAdd(ctx context.Context, cat *catalog.Catalog, img *config.Image, version string, src *source.Info, root string, res *onprem.AddResult) error {
	art, err := RecordArtifact(ctx, cat, img, version, src)
	if err != nil {
		return err
	}
	c := LibraryCopy(root, res)
	_, err = cat.PutCopy(ctx, catalog.Ref{Image: img.Name, Version: version}, catalog.Copy{Kind: c.Kind, Location: c.Location, ResourceID: c.ID,
		Fingerprint: c.Fingerprint, State: c.State, ParentID: art.ID})
	return err
}

// nextVersion picks the version when no destination decides it: the
// version already holding these bytes (a re-run), else the patch after the
// newest known to the destinations and the catalog, else 1.0.0.
func (e *Engine) nextVersion(ctx context.Context, r Request) (string, error) {
	var sha string
	if r.Source != nil {
		sha = r.Source.SHA256
	}
	var known []Known
	for _, d := range e.Destinations {
		if vl, ok := d.(VersionLister); ok {
			k, err := vl.KnownVersions(ctx, r.Image.Name)
			if err != nil {
				return "", err
			}
			known = append(known, k...)
		}
	}
	if e.Catalog != nil {
		vs, err := e.Catalog.Versions(ctx, r.Image.Name)
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return "", err
		}
		for _, v := range vs {
			known = append(known, Known{Version: v.Version, SHA256: v.ArtifactSHA256})
		}
	}
	newest := ""
	for _, k := range known {
		if sha != "" && k.SHA256 == sha {
			return k.Version, nil
		}
		if semver.ValidGallery(k.Version) && (newest == "" || catalog.CompareVersions(k.Version, newest) > 0) {
			newest = k.Version
		}
	}
	if newest == "" {
		return "1.0.0", nil
	}
	p, _ := semver.ParseGallery(newest)
	v := fmt.Sprintf("%d.%d.%d", p.Major, p.Minor, p.Patch+1)
	slog.Debug("pipeline: next version", "image", r.Image.Name, "after", newest, "version", v)
	return v, nil
}
