package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/config"
)

// Publisher plans and applies publishes, and runs replicate, check-deploy
// and destroy.
type Publisher struct {
	Clients  *Clients
	Blobs    BlobStore   // reads blob properties; nil: blobs are always uploaded
	Uploader Uploader    // required to publish
	Recorder RunRecorder // optional
	// OnEvent is told about progress (steps, replication per region, upload bytes).
	OnEvent func(Event)
	// PollInterval is how often long-running operations and replication are
	// polled. Default 10 s.
	PollInterval time.Duration
	Consistency  Consistency
	// Attempts is how many times a publish re-plans and resumes after a
	// transient failure (an operation that ended Failed, 5xx that outlasted
	// azcore's retries). Default 3.
	Attempts int
	RunID    string
	// ExtraTags are added to a version this publisher creates (e.g. where
	// its signed provenance is); imgpipe's own tags win on a clash.
	ExtraTags map[string]string
	// RBACPropagation is how long check-deploy treats a role assignment as
	// possibly not in effect yet. Default 10 minutes, Azure's documented
	// worst case (learn.microsoft.com/azure/role-based-access-control/troubleshooting).
	RBACPropagation time.Duration
	// now is replaced in tests.
	now func() time.Time
}

func (p *Publisher) poll() time.Duration {
	if p.PollInterval > 0 {
		return p.PollInterval
	}
	return 10 * time.Second
}

func (p *Publisher) clock() time.Time {
	if p.now != nil {
		return p.now()
	}
	return time.Now()
}

func (p *Publisher) emit(e Event) {
	if p.OnEvent != nil {
		p.OnEvent(e)
	}
}

// ErrStillReplicating is wrapped by the error returned when the replication
// timeout ends the waiting. The version keeps replicating in Azure; running
// publish again resumes watching.
var ErrStillReplicating = errors.New("still replicating")

// versionFailedError: the version ended in a Failed state.
type versionFailedError struct{ msg string }

func (e *versionFailedError) Error() string { return e.msg }

// Result is the outcome of a publish.
type Result struct {
	Plan      *Plan            `json:"plan"`
	VersionID string           `json:"version_id"`
	Regions   []RegionProgress `json:"regions,omitempty"`
	Attempts  int              `json:"attempts"`
	// Copies are the copies of the image in Azure after the publish: what
	// it made and what it found already made from this disk.
	Copies []Made `json:"copies,omitempty"`
}

// Apply carries out plan. On a transient failure (an operation that ended
// Failed, or 429/5xx that outlasted azcore's retries) it reads the state
// again and resumes, up to Attempts times; what was already made is kept.
func (p *Publisher) Apply(ctx context.Context, plan *Plan) (*Result, error) {
	if p.Uploader == nil {
		return nil, errors.New("internal error: no uploader configured")
	}
	attempts := p.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	res := &Result{VersionID: plan.VersionID}
	var err error
	for attempt := 1; ; attempt++ {
		res.Attempts = attempt
		res.Plan = plan
		var ap *applied
		ap, err = p.apply(ctx, plan, res)
		if ap != nil {
			res.Copies = plan.copies(ap, res)
		}
		if err == nil || !isTransient(err) || attempt >= attempts {
			break
		}
		slog.Warn("azure: publish step failed, reading the state again and resuming", "attempt", attempt, "err", shortErr(err))
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(p.poll()):
		}
		next, perr := p.Plan(ctx, plan.d)
		if perr != nil {
			return res, errors.Join(err, perr)
		}
		plan = next
	}
	return res, err
}

// Publish plans and applies.
func (p *Publisher) Publish(ctx context.Context, d *Desired) (*Result, error) {
	plan, err := p.Plan(ctx, d)
	if err != nil {
		return nil, err
	}
	return p.Apply(ctx, plan)
}

// applied carries what the steps made, for the version's tags.
type applied struct {
	blobURL   string
	diskID    string
	blobMD5   []byte
	blobETag  string // the blob's fingerprint (blobprint.go)
	blobSize  int64
	imageID   string
	imageTime string
	deleted   map[Kind]bool      // kinds a delete step removed (the managed image, a Failed version)
	version   map[string]*string // the tags of the version this run created
}

func (p *Publisher) apply(ctx context.Context, plan *Plan, res *Result) (*applied, error) {
	d := plan.d
	if d.Source == nil {
		return nil, errNoSource
	}
	ap := &applied{deleted: map[Kind]bool{}}
	if st := plan.st; st.image != nil {
		ap.imageID, ap.imageTime = deref(st.image.ID), imageCreated(st.image)
		ap.blobURL = tag(st.image.Tags, TagBlobURL)
		bp := printFromTags(st.image.Tags)
		ap.blobMD5, ap.blobETag, ap.blobSize = bp.MD5, bp.ETag, bp.Size
	}
	for i := range plan.Steps {
		s := &plan.Steps[i]
		if s.Action == ActKeep {
			if s.Kind == KindBlob && plan.st.blob != nil {
				ap.blobURL, ap.blobMD5, ap.blobETag, ap.blobSize = s.ID, plan.st.blob.MD5, plan.st.blob.ETag, plan.st.blob.Size
			}
			if s.Kind == KindDisk {
				ap.diskID = s.ID
			}
			continue
		}
		start := p.clock()
		p.emit(Event{Step: s, Phase: "start"})
		rec := StepRecord{Action: s.Action, Kind: s.Kind, Name: s.Name, ResourceID: s.ID, Started: start}
		err := p.applyStep(ctx, plan, s, ap, res, &rec)
		rec.Ended = p.clock()
		rec.Status = "done"
		if err != nil {
			rec.Status, rec.Error = "failed", err.Error()
		}
		if p.Recorder != nil {
			if rerr := p.Recorder.RecordStep(ctx, rec); rerr != nil {
				slog.Warn("azure: could not record run step", "err", rerr)
			}
		}
		if err != nil {
			return ap, fmt.Errorf("%s %s %s: %w", s.Action, s.Kind, s.Name, err)
		}
		if s.Action == ActDelete {
			ap.deleted[s.Kind] = true
		}
		p.emit(Event{Step: s, Phase: "done"})
	}
	return ap, nil
}

// pollOpts is for PollUntilDone, which refuses intervals under a second
// outside tests; Azure's Retry-After, when sent, takes precedence anyway.
func (p *Publisher) pollOpts() *runtime.PollUntilDoneOptions {
	return &runtime.PollUntilDoneOptions{Frequency: max(p.poll(), time.Second)}
}

func (p *Publisher) applyStep(ctx context.Context, plan *Plan, s *Step, ap *applied, res *Result, rec *StepRecord) error {
	d, c, a := plan.d, p.Clients, plan.d.Azure
	begun := func() { p.emit(Event{Step: s, Phase: "begun"}) }
	switch {
	case s.Kind == KindResourceGroup && s.Action == ActCreate:
		_, err := c.ResourceGroups.CreateOrUpdate(ctx, a.ResourceGroup, armresources.ResourceGroup{Location: to.Ptr(a.Location)}, nil)
		begun()
		return err

	case s.Kind == KindGallery && s.Action == ActCreate:
		return p.Consistency.do(ctx, "create gallery", func(ctx context.Context) error {
			poller, err := c.Galleries.BeginCreateOrUpdate(ctx, a.ResourceGroup, a.Gallery, armcompute.Gallery{
				Location:   to.Ptr(a.Location),
				Properties: &armcompute.GalleryProperties{Description: to.Ptr("Images published by imgpipe")},
			}, nil)
			if err != nil {
				return err
			}
			begun()
			_, err = poller.PollUntilDone(ctx, p.pollOpts())
			return err
		})

	case s.Kind == KindDefinition && s.Action == ActCreate:
		pub, offer, sku := d.identifier()
		props := &armcompute.GalleryImageProperties{
			OSType:           to.Ptr(armcompute.OperatingSystemTypes(d.Image.OSType)),
			OSState:          to.Ptr(armcompute.OperatingSystemStateTypes(d.Image.OSState)),
			HyperVGeneration: to.Ptr(armcompute.HyperVGeneration(plan.Generation)),
			Architecture:     to.Ptr(armcompute.Architecture(d.Image.Architecture)),
			Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr(pub), Offer: to.Ptr(offer), SKU: to.Ptr(sku)},
		}
		if d.Image.Description != "" {
			props.Description = to.Ptr(d.Image.Description)
		}
		if d.Image.SecurityType == "TrustedLaunch" {
			props.Features = []*armcompute.GalleryImageFeature{{Name: to.Ptr("SecurityType"), Value: to.Ptr("TrustedLaunch")}}
		}
		return p.Consistency.do(ctx, "create definition", func(ctx context.Context) error {
			poller, err := c.Definitions.BeginCreateOrUpdate(ctx, a.ResourceGroup, a.Gallery, a.Definition,
				armcompute.GalleryImage{Location: to.Ptr(a.Location), Properties: props}, nil)
			if err != nil {
				return err
			}
			begun()
			_, err = poller.PollUntilDone(ctx, p.pollOpts())
			return err
		})

	case s.Kind == KindVersion && s.Action == ActDelete:
		return p.deleteVersion(ctx, d.id(plan.Version), begun)

	case s.Kind == KindBlob && s.Action == ActUpload:
		return p.upload(ctx, plan, s, ap, rec, begun)

	case s.Kind == KindDisk && s.Action == ActUpload:
		begun()
		res, err := p.Uploader.UploadToDisk(ctx, d.Source.Path, s.ID, diskSpec(d, plan.Generation), func(done, total int64) {
			p.emit(Event{Step: s, Phase: "progress", Bytes: [2]int64{done, total}})
		})
		if err != nil {
			return fmt.Errorf("upload %s to managed disk %s: %w", d.Source.Path, s.Name, err)
		}
		ap.diskID = s.ID
		ap.blobMD5, ap.blobSize = res.MD5, res.Size
		// mark the disk with what it holds (a re-run keeps it)
		dtags := map[string]*string{TagSourceDigest: to.Ptr(d.Source.Digest)}
		blobPrint{MD5: res.MD5, Size: res.Size}.setTags(dtags)
		err = p.Consistency.do(ctx, "tag managed disk", func(ctx context.Context) error {
			poller, err := c.Disks.BeginUpdate(ctx, a.ResourceGroup, s.Name, armcompute.DiskUpdate{Tags: dtags}, nil)
			if err != nil {
				return err
			}
			_, err = poller.PollUntilDone(ctx, p.pollOpts())
			return err
		})
		rec.Fingerprint = map[string]string{"disk.id": s.ID, "source.digest": d.Source.Digest, "integrity": res.Integrity.String()}
		blobPrint{MD5: res.MD5, Size: res.Size}.record(rec.Fingerprint)
		return err

	case s.Kind == KindDisk && s.Action == ActDelete:
		if st := plan.st.disk; st != nil && st.Properties != nil && st.Properties.DiskState != nil && *st.Properties.DiskState == armcompute.DiskStateActiveUpload {
			if poller, err := c.Disks.BeginRevokeAccess(ctx, a.ResourceGroup, s.Name, nil); err == nil {
				_, _ = poller.PollUntilDone(ctx, p.pollOpts())
			}
		}
		err := p.deleteDisk(ctx, a.ResourceGroup, s.Name, begun)
		if isNotFound(err) {
			return nil
		}
		return err

	case s.Kind == KindManagedImage && s.Action == ActCreate:
		return p.createImage(ctx, plan, s, ap, rec, begun)

	case s.Kind == KindVersion && s.Action == ActCreate:
		return p.createVersion(ctx, plan, ap, rec, begun)

	case s.Kind == KindReplication && s.Action == ActWait:
		regions, err := p.watch(ctx, plan, nil)
		res.Regions = regions
		return err

	case s.Kind == KindVersion && (s.Action == ActReplicate || s.Action == ActUpdate):
		if s.Action == ActReplicate {
			v := plan.st.version
			check, err := p.checkSource(ctx, v)
			if err != nil {
				return err
			}
			if check.Changed {
				return planErrorf("%s", check.Why)
			}
			if check.Gone {
				slog.Warn("azure: the version's source no longer exists; asking Azure to replicate anyway", "version", plan.VersionID, "why", check.Why)
			}
		}
		return p.updateVersion(ctx, d.id(plan.Version), keepStaging(keepRegions(publishingProfile(a), plan.st.version), plan.st.version), begun)

	case s.Kind == KindRoleAssignment && s.Action == ActShare:
		return p.share(ctx, d.id(plan.Version).GalleryID(), s.share, begun)

	case s.Kind == KindManagedImage && s.Action == ActDelete:
		err := p.deleteImage(ctx, a.ResourceGroup, s.Name, begun)
		if isNotFound(err) {
			return nil
		}
		return err
	}
	return fmt.Errorf("internal error: no way to %s a %s", s.Action, s.Kind)
}

// awaitDelete starts a delete with begin, retrying Azure's eventual-consistency
// answers (p.Consistency), and waits for the operation. begun, if not nil, is
// called once Azure has accepted the delete.
func awaitDelete[T any](ctx context.Context, p *Publisher, what string, begun func(), begin func(context.Context) (*runtime.Poller[T], error)) error {
	return p.Consistency.do(ctx, what, func(ctx context.Context) error {
		poller, err := begin(ctx)
		if err != nil {
			return err
		}
		if begun != nil {
			begun()
		}
		_, err = poller.PollUntilDone(ctx, p.pollOpts())
		return err
	})
}

// deleteImage deletes a managed image and waits for it.
func (p *Publisher) deleteImage(ctx context.Context, rg, name string, begun func()) error {
	return awaitDelete(ctx, p, "delete managed image", begun, func(ctx context.Context) (*runtime.Poller[armcompute.ImagesClientDeleteResponse], error) {
		return p.Clients.Images.BeginDelete(ctx, rg, name, nil)
	})
}

// deleteDisk deletes a managed disk and waits for it.
func (p *Publisher) deleteDisk(ctx context.Context, rg, name string, begun func()) error {
	return awaitDelete(ctx, p, "delete managed disk", begun, func(ctx context.Context) (*runtime.Poller[armcompute.DisksClientDeleteResponse], error) {
		return p.Clients.Disks.BeginDelete(ctx, rg, name, nil)
	})
}

func (p *Publisher) deleteVersion(ctx context.Context, id ResourceID, begun func()) error {
	err := awaitDelete(ctx, p, "delete version", begun, func(ctx context.Context) (*runtime.Poller[armcompute.GalleryImageVersionsClientDeleteResponse], error) {
		return p.Clients.Versions.BeginDelete(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, nil)
	})
	if isNotFound(err) {
		return nil
	}
	return err
}

func (p *Publisher) upload(ctx context.Context, plan *Plan, s *Step, ap *applied, rec *StepRecord, begun func()) error {
	d := plan.d
	if p.Blobs != nil {
		if err := p.Blobs.EnsureContainer(ctx, d.containerURL()); err != nil {
			return fmt.Errorf("storage container %s: %w", d.containerURL(), err)
		}
	}
	begun()
	res, err := p.Uploader.UploadToBlob(ctx, d.Source.Path, s.ID, func(done, total int64) {
		p.emit(Event{Step: s, Phase: "progress", Bytes: [2]int64{done, total}})
	})
	if err != nil {
		return fmt.Errorf("upload %s: %w", d.Source.Path, err)
	}
	ap.blobURL, ap.blobMD5, ap.blobSize = s.ID, res.MD5, res.Size
	if p.Blobs != nil {
		if err := p.Blobs.SetMetadata(ctx, s.ID, map[string]string{metaDigest: d.Source.Digest}); err != nil {
			return fmt.Errorf("mark blob %s with its source: %w", s.ID, err)
		}
		if b, err := p.Blobs.Stat(ctx, s.ID); err == nil && b != nil {
			ap.blobSize, ap.blobETag = b.Size, b.ETag
			if len(b.MD5) > 0 {
				ap.blobMD5 = b.MD5
			}
		}
	}
	rec.Fingerprint = map[string]string{"source.digest": d.Source.Digest, "integrity": res.Integrity.String()}
	ap.print().record(rec.Fingerprint)
	return nil
}

func imageCreated(img *armcompute.Image) string {
	if img != nil && img.SystemData != nil && img.SystemData.CreatedAt != nil {
		return img.SystemData.CreatedAt.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

func (p *Publisher) createImage(ctx context.Context, plan *Plan, s *Step, ap *applied, rec *StepRecord, begun func()) error {
	d, a := plan.d, plan.d.Azure
	tags := map[string]*string{
		TagSourceDigest: to.Ptr(d.Source.Digest),
		TagBlobURL:      to.Ptr(ap.blobURL),
	}
	ap.print().setTags(tags)
	if p.RunID != "" {
		tags[TagRun] = to.Ptr(p.RunID)
	}
	img := armcompute.Image{
		Location: to.Ptr(a.Location),
		Tags:     tags,
		Properties: &armcompute.ImageProperties{
			HyperVGeneration: to.Ptr(armcompute.HyperVGenerationTypes(plan.Generation)),
			StorageProfile: &armcompute.ImageStorageProfile{OSDisk: &armcompute.ImageOSDisk{
				OSType:  to.Ptr(armcompute.OperatingSystemTypes(d.Image.OSType)),
				OSState: to.Ptr(armcompute.OperatingSystemStateTypes(d.Image.OSState)),
				BlobURI: to.Ptr(ap.blobURL),
			}},
		},
	}
	err := p.Consistency.do(ctx, "create managed image", func(ctx context.Context) error {
		poller, err := p.Clients.Images.BeginCreateOrUpdate(ctx, a.ResourceGroup, s.Name, img, nil)
		if err != nil {
			return err
		}
		begun()
		_, err = poller.PollUntilDone(ctx, p.pollOpts())
		return err
	})
	if err != nil {
		return err
	}
	got, err := p.Clients.Images.Get(ctx, a.ResourceGroup, s.Name, nil)
	if err != nil {
		return fmt.Errorf("read the managed image just made: %w", err)
	}
	ap.imageID, ap.imageTime = deref(got.ID), imageCreated(&got.Image)
	if ap.imageID == "" {
		ap.imageID = s.ID
	}
	rec.ResourceID = ap.imageID
	rec.Fingerprint = map[string]string{"image.id": ap.imageID, "image.created": ap.imageTime, "source.digest": d.Source.Digest}
	return nil
}

func publishingProfile(a config.Azure) *armcompute.GalleryImageVersionPublishingProfile {
	pp := &armcompute.GalleryImageVersionPublishingProfile{ExcludeFromLatest: to.Ptr(a.ExcludeFromLatest)}
	if !a.EndOfLife.IsZero() {
		pp.EndOfLifeDate = to.Ptr(a.EndOfLife)
	}
	for _, r := range a.TargetRegions {
		tr := &armcompute.TargetRegion{
			Name:                 to.Ptr(r.Name),
			RegionalReplicaCount: to.Ptr(r.Replicas),
			StorageAccountType:   to.Ptr(armcompute.StorageAccountType(r.StorageAccountType)),
		}
		if r.ExcludeFromLatest != nil {
			tr.ExcludeFromLatest = to.Ptr(*r.ExcludeFromLatest)
		}
		pp.TargetRegions = append(pp.TargetRegions, tr)
	}
	return pp
}

// versionTags records the version's source fingerprint.
func (p *Publisher) versionTags(plan *Plan, ap *applied) map[string]*string {
	t := map[string]*string{}
	for k, v := range p.ExtraTags {
		t[k] = to.Ptr(v)
	}
	for k, v := range map[string]*string{
		TagSourceDigest: to.Ptr(plan.d.Source.Digest),
		TagSourceFile:   to.Ptr(filepath.Base(plan.d.Source.Path)),
		TagGeneration:   to.Ptr(plan.Generation),
	} {
		t[k] = v
	}
	if ap.blobURL != "" {
		t[TagBlobURL] = to.Ptr(ap.blobURL)
		ap.print().setTags(t)
	}
	if ap.diskID != "" {
		t[TagDiskID] = to.Ptr(ap.diskID)
		ap.print().setTags(t)
	}
	if ap.imageID != "" {
		t[TagImageID] = to.Ptr(ap.imageID)
		t[TagImageCreated] = to.Ptr(ap.imageTime)
	}
	if p.RunID != "" {
		t[TagRun] = to.Ptr(p.RunID)
	}
	return t
}

func (p *Publisher) createVersion(ctx context.Context, plan *Plan, ap *applied, rec *StepRecord, begun func()) error {
	d, a := plan.d, plan.d.Azure
	sp := &armcompute.GalleryImageVersionStorageProfile{}
	if a.Upload == "disk" {
		if ap.diskID == "" {
			return errors.New("internal error: no managed disk to make the version from")
		}
		sp.Source = &armcompute.GalleryArtifactVersionFullSource{ID: to.Ptr(ap.diskID)}
	} else if a.ManagedImage {
		if ap.imageID == "" {
			return errors.New("internal error: no managed image to make the version from")
		}
		sp.Source = &armcompute.GalleryArtifactVersionFullSource{ID: to.Ptr(ap.imageID)}
	} else {
		sp.OSDiskImage = &armcompute.GalleryOSDiskImage{
			HostCaching: to.Ptr(armcompute.HostCachingReadOnly),
			Source:      &armcompute.GalleryDiskImageSource{URI: to.Ptr(ap.blobURL), StorageAccountID: to.Ptr(d.storageAccountID())},
		}
	}
	v := armcompute.GalleryImageVersion{
		Location: to.Ptr(a.Location),
		Tags:     p.versionTags(plan, ap),
		Properties: &armcompute.GalleryImageVersionProperties{
			PublishingProfile: staged(publishingProfile(a)), // staging.go
			StorageProfile:    sp,
			SafetyProfile:     &armcompute.GalleryImageVersionSafetyProfile{AllowDeletionOfReplicatedLocations: to.Ptr(false)},
		},
	}
	id := d.id(plan.Version)
	ap.version = v.Tags
	rec.ResourceID = id.String()
	rec.Fingerprint = map[string]string{}
	for k, v := range v.Tags {
		rec.Fingerprint[k] = *v
	}
	var poller *runtime.Poller[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse]
	err := p.Consistency.do(ctx, "create version", func(ctx context.Context) error {
		var err error
		poller, err = p.Clients.Versions.BeginCreateOrUpdate(ctx, a.ResourceGroup, a.Gallery, a.Definition, plan.Version, v, nil)
		return err
	})
	if err != nil {
		return err
	}
	begun()
	// The creation's outcome is watched by the replication step, which
	// polls this operation and the version's per-region status together.
	plan.pending = poller
	return nil
}

// watch waits until the version has replicated to every region, reporting
// per-region progress. The replication timeout ends the wait, never the
// version: ErrStillReplicating is returned and a re-run resumes watching.
func (p *Publisher) watch(ctx context.Context, plan *Plan, _ any) ([]RegionProgress, error) {
	poller := plan.pending
	plan.pending = nil
	return p.watchVersion(ctx, plan.d.id(plan.Version), plan.d.Azure.ReplicationTimeout, poller, &plan.lastState)
}

// watchVersion polls the version (and its creation, when poller is not nil)
// until every region has replicated or timeout passes.
// The version's provisioning state, as last seen, goes to *state (if not nil).
func (p *Publisher) watchVersion(ctx context.Context, id ResourceID, timeout time.Duration, poller *runtime.Poller[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse], state *string) ([]RegionProgress, error) {
	version, st := id.Version, state
	deadline := p.clock().Add(timeout)
	var regions []RegionProgress
	for {
		if poller != nil {
			if _, err := poller.Poll(ctx); err != nil && !poller.Done() {
				if ctx.Err() != nil {
					return regions, ctx.Err()
				}
				slog.Info("azure: polling the version creation failed; will look at the version itself", "err", shortErr(err))
			}
			if poller.Done() {
				_, err := poller.Result(ctx)
				poller = nil
				if err != nil {
					return regions, fmt.Errorf("creating version %s: %w", version, err)
				}
			}
		}
		v, err := p.Clients.Versions.Get(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version,
			&armcompute.GalleryImageVersionsClientGetOptions{Expand: to.Ptr(armcompute.ReplicationStatusTypesReplicationStatus)})
		if err != nil {
			if ctx.Err() != nil {
				return regions, ctx.Err()
			}
			if !isNotFound(err) || poller == nil {
				return regions, fmt.Errorf("read replication status of %s: %w", version, err)
			}
		} else {
			regions = regionsOf(&v.GalleryImageVersion)
			p.emit(Event{Step: &Step{Action: ActWait, Kind: KindReplication, Name: version, ID: id.String()}, Phase: "progress", Regions: regions})
			state := provisioning(&v.GalleryImageVersion)
			if st != nil {
				*st = state
			}
			for _, r := range regions {
				if r.State == string(armcompute.ReplicationStateFailed) {
					return regions, &versionFailedError{fmt.Sprintf("version %s failed to replicate to %s: %s", version, r.Region, r.Details)}
				}
			}
			if state == "Failed" {
				return regions, &versionFailedError{fmt.Sprintf("version %s is in Failed state", version)}
			}
			if poller == nil && state == "Succeeded" && replicationDone(&v.GalleryImageVersion) {
				return regions, nil
			}
		}
		if p.clock().After(deadline) {
			return regions, fmt.Errorf("stopped waiting after %s: version %s is %w (%s); it keeps replicating in Azure: run publish again to resume watching, or raise replication_timeout",
				timeout, version, ErrStillReplicating, regionSummary(regions))
		}
		t := time.NewTimer(p.poll())
		select {
		case <-ctx.Done():
			t.Stop()
			return regions, ctx.Err()
		case <-t.C:
		}
	}
}

func regionSummary(rs []RegionProgress) string {
	if len(rs) == 0 {
		return "no per-region status yet"
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s %s %d%%", r.Region, r.State, r.Progress))
	}
	return strings.Join(parts, ", ")
}

func (p *Publisher) updateVersion(ctx context.Context, id ResourceID, pp *armcompute.GalleryImageVersionPublishingProfile, begun func()) error {
	upd := armcompute.GalleryImageVersionUpdate{Properties: &armcompute.GalleryImageVersionProperties{
		PublishingProfile: pp,
		StorageProfile:    &armcompute.GalleryImageVersionStorageProfile{},
	}}
	return p.Consistency.do(ctx, "update version", func(ctx context.Context) error {
		poller, err := p.Clients.Versions.BeginUpdate(ctx, id.ResourceGroup, id.Gallery, id.Definition, id.Version, upd, nil)
		if err != nil {
			return err
		}
		begun()
		_, err = poller.PollUntilDone(ctx, p.pollOpts())
		return err
	})
}

func (p *Publisher) share(ctx context.Context, galleryID string, sh *config.Share, begun func()) error {
	role := ReaderRoleDefinitionID(p.Clients.Subscription)
	name := roleAssignmentName(galleryID, sh.PrincipalID, readerRoleGUID)
	params := armauthorization.RoleAssignmentCreateParameters{Properties: &armauthorization.RoleAssignmentProperties{
		PrincipalID:      to.Ptr(sh.PrincipalID),
		RoleDefinitionID: to.Ptr(role),
		PrincipalType:    to.Ptr(armauthorization.PrincipalType(sh.PrincipalType)),
		Description:      to.Ptr(shareDescription(sh.Subscription)),
	}}
	err := p.Consistency.do(ctx, "grant Reader on the gallery", func(ctx context.Context) error {
		_, err := p.Clients.RoleAssignments.Create(ctx, galleryID, name, params, nil)
		return err
	})
	begun()
	var re *azcore.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusConflict && re.ErrorCode == "RoleAssignmentExists" {
		return nil
	}
	return err
}

const sharePrefix = "imgpipe share: deployments in subscription "

func shareDescription(sub string) string { return sharePrefix + sub }

// diskSpec is the managed disk of a direct upload: an OS disk carrying the
// image's OS type, generation and security type, as Azure reads them from a
// version's source disk.
func diskSpec(d *Desired, gen string) DiskSpec {
	spec := DiskSpec{Location: d.Azure.Location, HyperVGeneration: gen, OSType: d.Image.OSType}
	if strings.EqualFold(d.Image.SecurityType, "TrustedLaunch") {
		spec.SecurityType = "TrustedLaunch"
	}
	return spec
}
