package main

// What publish records in the catalog: the image, the version with its
// provenance, and its lineage (artifact -> on-prem copies, blob or managed
// disk -> managed image -> gallery version -> regions), each copy with its
// fingerprint and state. Also the on-prem destinations of the pipeline file.

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/disk"
	"imgpipe/internal/onprem"
)

// openPublishCatalog opens the catalog publish records into: --catalog, the
// pipeline file's catalog block, $IMGPIPE_CATALOG, else the per-user
// default (the catalog promote, show and gc read). nil with --no-catalog.
func openPublishCatalog(ctx context.Context, flag string, off bool, file *config.File) (*catalog.Catalog, error) {
	if off {
		return nil, nil
	}
	fromFile := ""
	if file != nil && file.Catalog != nil {
		fromFile = file.Catalog.URL
	}
	loc, err := resolveCatalogLocation(flag, fromFile)
	if err != nil {
		return nil, err
	}
	c, err := catalog.Open(ctx, loc)
	if err != nil {
		return nil, fmt.Errorf("open the catalog %s: %w (give another --catalog, or --no-catalog to publish without recording the version)", loc, err)
	}
	return c, nil
}

// startRunIn starts a run record in an open catalog (nil: nothing recorded).
func startRunIn(ctx context.Context, cat *catalog.Catalog, kind, image, version string) (azure.RunRecorder, func(error)) {
	if cat == nil {
		return nil, func(error) {}
	}
	run, err := cat.StartRun(ctx, catalog.Run{Kind: kind, Image: image, Version: version, By: whoAmI("")})
	if err != nil {
		slog.Warn("catalog: could not start the run record", "err", err)
		return nil, func(error) {}
	}
	return &catalogRecorder{cat: cat, runID: run.ID}, func(runErr error) {
		if err := cat.FinishRun(context.WithoutCancel(ctx), run.ID, runErr); err != nil {
			slog.Warn("catalog: could not finish the run record", "err", err)
		}
	}
}

// artifact is the source file a version is published from.
type artifact struct {
	Path   string // absolute
	SHA256 string // hex
	Digest string // blake3:HEX, as on the Azure resources' tags
	Gen    string // V1 / V2
}

// recordVersion records the image, the version with its provenance and
// the artifact copy. Re-running with the same artifact is a no-op.
func recordVersion(ctx context.Context, cat *catalog.Catalog, img *config.Image, version string, a artifact) (catalog.Copy, error) {
	ref := catalog.Ref{Image: img.Name, Version: version}
	if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: img.Name, Version: version, Provenance: catalog.Provenance{
		ArtifactSHA256: a.SHA256, HyperVGeneration: a.Gen, OSType: img.OSType,
	}}); err != nil {
		return catalog.Copy{}, err
	}
	detail, _ := json.Marshal(map[string]string{"digest": a.Digest})
	return cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: a.Path, Fingerprint: "sha256:" + a.SHA256,
		State: catalog.StatePresent, Detail: detail})
}

func withoutQuery(u string) string {
	if p, err := url.Parse(u); err == nil {
		p.RawQuery, p.Fragment = "", ""
		return p.String()
	}
	s, _, _ := strings.Cut(u, "?")
	return s
}

// regionState maps a replication state to a catalog copy state.
func regionState(s string) string {
	switch s {
	case "Completed":
		return catalog.StateSucceeded
	case "Replicating":
		return catalog.StateCreating
	case "Failed":
		return catalog.StateFailed
	}
	return cmp.Or(s, "Unknown")
}

// recordAzureLineage reads the published version from Azure and records
// its copies: blob or managed disk, managed image, gallery version and one
// copy per target region, each with the fingerprint and state Azure holds.
func recordAzureLineage(ctx context.Context, cat *catalog.Catalog, pub *azure.Publisher, ref catalog.Ref, art catalog.Copy, az *config.Azure, versionID string) error {
	id, err := azure.ParseResourceID(versionID)
	if err != nil {
		return err
	}
	st, err := pub.DescribeVersion(ctx, id)
	if err != nil {
		return err
	}
	put := func(cp catalog.Copy) (catalog.Copy, error) { return cat.PutCopy(ctx, ref, cp) }
	parent := art
	size := st.Tags[azure.TagBlobSize]
	md5 := st.Tags[azure.TagBlobMD5]
	fp := fmt.Sprintf("md5:%s size:%s", md5, size)
	if u := st.Tags[azure.TagBlobURL]; u != "" {
		state := catalog.StateSucceeded
		if pub.Blobs != nil {
			if props, err := pub.Blobs.Stat(ctx, u); err == nil && props == nil {
				state = catalog.StateDeleted
			}
		}
		if parent, err = put(catalog.Copy{Kind: catalog.KindBlob, Location: az.Location, ResourceID: withoutQuery(u), Fingerprint: fp, State: state, ParentID: art.ID}); err != nil {
			return err
		}
	}
	if d := st.Tags[azure.TagDiskID]; d != "" {
		if parent, err = put(catalog.Copy{Kind: catalog.KindManagedDisk, Location: az.Location, ResourceID: d, Fingerprint: fp,
			State: existState(ctx, pub, d), ParentID: art.ID}); err != nil {
			return err
		}
	}
	if im := st.Tags[azure.TagImageID]; im != "" {
		if parent, err = put(catalog.Copy{Kind: catalog.KindManagedImage, Location: az.Location, ResourceID: im,
			Fingerprint: "created:" + st.Tags[azure.TagImageCreated], State: existState(ctx, pub, im), ParentID: parent.ID}); err != nil {
			return err
		}
	}
	detail, _ := json.Marshal(st.Tags)
	gv, err := put(catalog.Copy{Kind: catalog.KindGalleryVersion, Location: config.NormalizeLocation(st.Location), ResourceID: st.ID,
		Fingerprint: st.Tags[azure.TagSourceDigest], State: st.ProvisioningState, ParentID: parent.ID, Detail: detail})
	if err != nil {
		return err
	}
	return recordRegions(ctx, cat, ref, gv, st)
}

// recordRegions records one copy per target region of a gallery version.
func recordRegions(ctx context.Context, cat *catalog.Catalog, ref catalog.Ref, gv catalog.Copy, st *azure.VersionState) error {
	for _, r := range st.Regions {
		d, _ := json.Marshal(map[string]any{"replication_state": r.State, "progress": r.Progress, "details": r.Details})
		if _, err := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindRegion, Location: r.Region, ResourceID: st.ID + "#" + r.Region,
			State: regionState(r.State), ParentID: gv.ID, Detail: d}); err != nil {
			return err
		}
	}
	return nil
}

// refreshRegions updates the region copies of a gallery version after
// replicate, when the catalog (--catalog, the file's, $IMGPIPE_CATALOG, or
// an existing default one) records it; otherwise it does nothing.
func refreshRegions(ctx context.Context, flag string, s *azureSession, id azure.ResourceID) error {
	fromFile := ""
	if s.file != nil && s.file.Catalog != nil {
		fromFile = s.file.Catalog.URL
	}
	loc, err := resolveCatalogLocation(flag, fromFile)
	if err != nil {
		return err
	}
	if flag == "" && fromFile == "" && os.Getenv(catalogEnv) == "" {
		if _, err := os.Stat(loc); err != nil {
			return nil // no catalog here: nothing to update
		}
	}
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		return err
	}
	defer cat.Close()
	image := id.Definition
	if s.image != nil {
		image = s.image.Name
	}
	ref := catalog.Ref{Image: image, Version: id.Version}
	cps, err := cat.Copies(ctx, ref)
	if errors.Is(err, catalog.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, cp := range cps {
		if cp.Kind == catalog.KindGalleryVersion && strings.EqualFold(cp.ResourceID, id.String()) {
			st, err := s.pub.DescribeVersion(ctx, id)
			if err != nil {
				return err
			}
			return recordRegions(ctx, cat, ref, cp, st)
		}
	}
	return nil
}

// existState is Succeeded while the managed image or disk exists, Deleted
// once publish removed it (keep_managed_image = false).
func existState(ctx context.Context, pub *azure.Publisher, id string) string {
	ok, err := pub.SourceExists(ctx, id)
	switch {
	case err != nil:
		slog.Warn("catalog: could not tell whether the source still exists", "id", id, "err", err)
		return "Unknown"
	case ok:
		return catalog.StateSucceeded
	}
	return catalog.StateDeleted
}

// onpremResult is what publishing to one on-prem library did.
type onpremResult struct {
	Target   string `json:"target"`
	Library  string `json:"library"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Existed  bool   `json:"existed"`
	Channel  string `json:"channel,omitempty"`
	Promoted bool   `json:"promoted"`
	Note     string `json:"note,omitempty"`
}

// publishOnprem adds the disk to the on-prem library of block o (as
// imgpipe onprem add does: converted to VHDX unless it is one), records the
// copy in the catalog (when there is one) and moves o.Channel to the
// version, in the catalog first (forward only) and then in the library.
func publishOnprem(ctx context.Context, cat *catalog.Catalog, o config.OnPrem, img *config.Image, version string, a artifact, art *catalog.Copy) (*onpremResult, error) {
	lib, err := onprem.Open(o.Library)
	if err != nil {
		return nil, err
	}
	out := &onpremResult{Target: o.Name, Library: lib.Root()}
	d, err := disk.Open(a.Path)
	if err != nil {
		return nil, err
	}
	vsize := d.Size()
	d.Close()
	step, finish := stepBars()
	res, err := lib.AddFile(ctx, a.Path, onprem.AddOptions{
		Image: img.Name, Version: version, Convert: string(disk.FormatVHDX), VirtualSize: vsize,
		Generation: a.Gen, OS: strings.ToLower(cmp.Or(img.OSType, "Linux")),
		SourceFingerprint: "sha256:" + a.SHA256, InputSHA256: a.SHA256, Step: step,
		Labels: map[string]string{"sourceFile": filepath.Base(a.Path)},
	})
	finish()
	if err != nil {
		return nil, fmt.Errorf("onprem %q: %w", o.Name, err)
	}
	out.Path, out.SHA256, out.Existed, out.Channel = res.Path, res.Metadata.SHA256, res.Existed, o.Channel
	ref := catalog.Ref{Image: img.Name, Version: version}
	if cat != nil {
		cp := catalog.Copy{Kind: catalog.KindOnprem, Location: lib.Root(), ResourceID: res.Path,
			Fingerprint: "sha256:" + res.Metadata.SHA256, State: catalog.StatePresent}
		if art != nil {
			cp.ParentID = art.ID
		}
		if _, err := cat.PutCopy(ctx, ref, cp); err != nil {
			return out, err
		}
	}
	if o.Channel == "" {
		return out, nil
	}
	if cat != nil {
		if _, err := cat.Promote(ctx, catalog.PromoteRequest{Ref: ref, Channel: o.Channel, By: whoAmI("")}); err != nil {
			if errors.Is(err, catalog.ErrNotForward) {
				out.Note = err.Error() + " (library pointer left as it is)"
				return out, nil
			}
			return out, err
		}
	}
	if err := lib.SetChannel(img.Name, version, o.Channel); err != nil {
		return out, err
	}
	out.Promoted = true
	return out, nil
}

// onpremTargets returns the onprem blocks that publish image.
func onpremTargets(f *config.File, image string) []config.OnPrem {
	var out []config.OnPrem
	for _, o := range f.OnPrem {
		if o.Image == image {
			out = append(out, o)
		}
	}
	return out
}

// onpremVersion decides the version of an on-prem-only publish: --version;
// else the library version already holding these bytes (a re-run); else
// the patch after the newest in the catalog and the libraries.
func onpremVersion(ctx context.Context, cat *catalog.Catalog, targets []config.OnPrem, image, flag, sha string) (string, error) {
	if flag != "" {
		if !config.ValidVersion(flag) {
			return "", fmt.Errorf("--version %q: use MAJOR.MINOR.PATCH", flag)
		}
		return flag, nil
	}
	newest := ""
	consider := func(v string) {
		if _, err := catalog.ParseVersion(v); err == nil && (newest == "" || catalog.CompareVersions(v, newest) > 0) {
			newest = v
		}
	}
	for _, o := range targets {
		lib, err := onprem.Open(o.Library)
		if err != nil {
			return "", err
		}
		vs, err := lib.Versions(image)
		if err != nil && !errors.Is(err, onprem.ErrNotFound) {
			return "", err
		}
		for _, md := range vs {
			if md.InputSHA256 == sha || md.SHA256 == sha {
				return md.Version, nil
			}
			consider(md.Version)
		}
	}
	if cat != nil {
		vs, err := cat.Versions(ctx, image)
		if err != nil && !errors.Is(err, catalog.ErrNotFound) {
			return "", err
		}
		for _, v := range vs {
			if v.ArtifactSHA256 == sha {
				return v.Version, nil
			}
			consider(v.Version)
		}
	}
	if newest == "" {
		return "1.0.0", nil
	}
	p, _ := catalog.ParseVersion(newest)
	return fmt.Sprintf("%d.%d.%d", p.Major, p.Minor, p.Patch+1), nil
}
