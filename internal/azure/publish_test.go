package azure

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
	"imgpipe/internal/config"
	"imgpipe/internal/progress"
)

func actions(p *Plan) []string {
	var out []string
	for _, s := range p.Steps {
		out = append(out, string(s.Action)+" "+string(s.Kind))
	}
	return out
}

func testPublishFromNothingThenNoOp(t *testing.T, e *testEnv) {
	ctx := context.Background()
	d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 1), "", ""))
	if d.Source.Generation != "V2" {
		t.Fatalf("generation = %q (%s)", d.Source.Generation, d.Source.GenerationErr)
	}
	plan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create resource_group", "create gallery", "create definition", "upload blob", "create managed_image", "create version", "wait replication"}
	if got := actions(plan); !slices.Equal(got, want) {
		t.Fatalf("plan = %v, want %v\n%s", got, want, plan.Text())
	}
	rec := &memRecorder{}
	e.pub.Recorder = rec
	var regionsSeen []RegionProgress
	e.pub.OnEvent = func(ev Event) {
		if len(ev.Regions) > 0 {
			regionsSeen = ev.Regions
		}
	}
	res, err := e.pub.Apply(ctx, plan)
	if err != nil {
		t.Fatalf("publish: %v\n%s", err, Explain(err))
	}
	if len(res.Regions) != 3 {
		t.Fatalf("regions = %+v", res.Regions)
	}
	for _, r := range res.Regions {
		if r.State != "Completed" || r.Progress != 100 {
			t.Errorf("region %+v not complete", r)
		}
	}
	if len(regionsSeen) != 3 {
		t.Errorf("no per-region progress events: %+v", regionsSeen)
	}
	// the run record names what each step made, with fingerprints
	if len(rec.steps) != len(want) {
		t.Fatalf("recorded %d steps: %+v", len(rec.steps), rec.steps)
	}
	for _, s := range rec.steps {
		if s.Status != "done" || s.Ended.Before(s.Started) {
			t.Errorf("step record %+v", s)
		}
		switch s.Kind {
		case KindManagedImage, KindVersion:
			if s.ResourceID == "" || s.Fingerprint["source.digest"]+s.Fingerprint[TagSourceDigest] != d.Source.Digest {
				t.Errorf("step record without id/fingerprint: %+v", s)
			}
		case KindBlob:
			if s.Fingerprint["blob.etag"] == "" || s.Fingerprint["blob.size"] == "" || !strings.HasPrefix(s.Fingerprint["integrity"], "crc64 checked by the service") {
				t.Errorf("upload record without ETag/size/integrity: %+v", s)
			}
			if s.Fingerprint["blob.md5"] != "" {
				t.Errorf("publish computed the whole-blob MD5 (O(virtual size)): %+v", s)
			}
		}
	}
	vid := d.id("1.0.0").String()
	if st := e.emu.Server.ProvisioningState(vid); st != "Succeeded" {
		t.Fatalf("version state %q", st)
	}
	// the definition carries the disk's generation
	def, err := e.pub.Clients.Definitions.Get(ctx, e.rg, galleryFor(e.rg), "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if g := string(*def.Properties.HyperVGeneration); g != "V2" {
		t.Fatalf("definition generation %s", g)
	}
	// the version records its source
	v, err := e.pub.Clients.Versions.Get(ctx, e.rg, galleryFor(e.rg), "web", "1.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{TagSourceDigest, TagBlobETag, TagBlobSize, TagImageID, TagBlobURL} {
		if tag(v.Tags, k) == "" {
			t.Errorf("version lacks tag %s: %v", k, v.Tags)
		}
	}
	if _, ok := v.Tags[TagBlobMD5]; ok {
		t.Errorf("version carries a blob MD5 tag though none was computed: %v", v.Tags)
	}
	if b, err := e.pub.Blobs.Stat(ctx, d.blobURL("1.0.0")); err != nil || b == nil || b.ETag != tag(v.Tags, TagBlobETag) || len(b.MD5) != 0 {
		t.Errorf("blob now %+v (%v), version's ETag %s", b, err, tag(v.Tags, TagBlobETag))
	}
	before := e.resources()

	// second publish: nothing to do
	plan2, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if plan2.HasChanges() {
		t.Fatalf("second plan has changes:\n%s", plan2.Text())
	}
	if !strings.Contains(plan2.Text(), "No changes") {
		t.Fatalf("text:\n%s", plan2.Text())
	}
	if _, err := e.pub.Apply(ctx, plan2); err != nil {
		t.Fatal(err)
	}
	if after := e.resources(); !slices.Equal(before, after) {
		t.Fatalf("no-op publish changed resources:\n%v\n%v", before, after)
	}

	// the same version name from another disk is refused, before any change
	d2 := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 2), "", ""))
	if _, err := e.pub.Plan(ctx, d2); err == nil || !strings.Contains(err.Error(), "bump the version") {
		t.Fatalf("other disk, same version: %v", err)
	}
	// next-patch makes 1.0.1 for it, and resumes that same version on a re-run
	d3 := e.desired(t, e.pipeline(t, d2.Source.Path, "", ""))
	d3.Azure.Version = "next-patch"
	p3, err := e.pub.Plan(ctx, d3)
	if err != nil || p3.Version != "1.0.1" {
		t.Fatalf("next-patch: %v %v", p3, err)
	}
	d4 := *d
	d4.Azure.Version = "next-patch"
	p4, err := e.pub.Plan(ctx, &d4)
	if err != nil || p4.Version != "1.0.0" || p4.HasChanges() {
		t.Fatalf("next-patch of the published disk should be the existing 1.0.0: %v %v", p4, err)
	}
}

func testGen2IntoV1DefinitionRefusedBeforeUpload(t *testing.T, e *testEnv) {
	ctx := context.Background()
	// a V1 definition made by publishing a V1 disk
	d1 := e.desired(t, e.pipeline(t, makeDisk(t, "V1", 1), "", ""))
	if _, err := e.pub.Publish(ctx, d1); err != nil {
		t.Fatalf("publish V1: %v", err)
	}
	// now a V2 disk as 2.0.0 into the same definition
	d2 := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 2), "", ""))
	d2.Azure.Version = "2.0.0"
	uploads := 0
	e.pub.Uploader = countingUploader{e.pub.Uploader, &uploads}
	before := e.resources()
	_, err := e.pub.Publish(ctx, d2)
	var pe *PlanError
	if !errors.As(err, &pe) || !strings.Contains(err.Error(), "hyperVGeneration V1") || !strings.Contains(err.Error(), "Nothing was uploaded") {
		t.Fatalf("Gen2 into V1: %v", err)
	}
	if uploads != 0 {
		t.Fatalf("%d uploads before the refusal", uploads)
	}
	if after := e.resources(); !slices.Equal(before, after) {
		t.Fatalf("resources changed:\n%v\n%v", before, after)
	}
	blob, err := e.pub.Blobs.Stat(ctx, d2.blobURL("2.0.0"))
	if err != nil || blob != nil {
		t.Fatalf("blob of the refused version exists: %+v %v", blob, err)
	}
	// and the file saying V1 about a V2 disk is a conflict too
	d3 := e.desired(t, e.pipeline(t, d2.Source.Path, `hyperv_generation = "V1"`, ""))
	if _, err := e.pub.Plan(ctx, d3); err == nil || !strings.Contains(err.Error(), "says hyperv_generation") {
		t.Fatalf("file/disk conflict: %v", err)
	}
}

type countingUploader struct {
	Uploader
	n *int
}

func (c countingUploader) UploadToBlob(ctx context.Context, src, u string, p progress.Func) (UploadResult, error) {
	*c.n++
	return c.Uploader.UploadToBlob(ctx, src, u, p)
}

// testTrustedLaunchFromVHD: a Trusted Launch image gets no managed image;
// the version is made straight from the VHD blob, the definition carries
// the SecurityType feature.
func testTrustedLaunchFromVHD(t *testing.T, e *testEnv) {
	testVersionFromVHD(t, e, "V2", `security_type = "TrustedLaunch"`, "")
}

// testStandardFromVHD: managed_image = false takes the same path for a
// Standard (here generation 1) image.
func testStandardFromVHD(t *testing.T, e *testEnv) {
	testVersionFromVHD(t, e, "V1", "", "managed_image = false")
}

func testVersionFromVHD(t *testing.T, e *testEnv, gen, imageExtra, azureExtra string) {
	ctx := context.Background()
	d := e.desired(t, e.pipeline(t, makeDisk(t, gen, 3), imageExtra, azureExtra))
	trusted := imageExtra != ""
	plan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create resource_group", "create gallery", "create definition", "upload blob", "create version", "wait replication"}
	if got := actions(plan); !slices.Equal(got, want) {
		t.Fatalf("plan = %v\n%s", got, plan.Text())
	}
	if _, err := e.pub.Apply(ctx, plan); err != nil {
		t.Fatalf("%v\n%s", err, Explain(err))
	}
	def, err := e.pub.Clients.Definitions.Get(ctx, e.rg, galleryFor(e.rg), "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if f := def.Properties.Features; trusted && (len(f) != 1 || *f[0].Name != "SecurityType" || *f[0].Value != "TrustedLaunch") {
		t.Fatalf("features %+v", f)
	}
	v, err := e.pub.Clients.Versions.Get(ctx, e.rg, galleryFor(e.rg), "web", "1.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if src := v.Properties.StorageProfile.OSDiskImage.Source; src == nil || *src.URI != d.blobURL("1.0.0") || src.StorageAccountID == nil {
		t.Fatalf("version source %+v", v.Properties.StorageProfile)
	}
	for _, id := range e.rgResources(e.rg) {
		if strings.Contains(id, "microsoft.compute/images/") {
			t.Fatalf("a managed image was made: %s", id)
		}
	}
	// replicate checks the blob: replaced -> refused, even when the
	// replacement carries the original's metadata (same source digest)
	// and size: only its ETag tells
	other := e.desired(t, e.pipeline(t, makeDisk(t, gen, 4), "", ""))
	if _, err := e.pub.Uploader.UploadToBlob(ctx, other.Source.Path, d.blobURL("1.0.0"), nil); err != nil {
		t.Fatal(err)
	}
	if err := e.pub.Blobs.SetMetadata(ctx, d.blobURL("1.0.0"), map[string]string{metaDigest: d.Source.Digest}); err != nil {
		t.Fatal(err)
	}
	if b, err := e.pub.Blobs.Stat(ctx, d.blobURL("1.0.0")); err != nil || b.Size != d.Source.VHDSize {
		t.Fatalf("the replacement should look like the original but for its bits: %+v %v", b, err)
	}
	_, err = e.pub.Replicate(ctx, d.id("1.0.0"), []config.TargetRegion{{Name: "japaneast", Replicas: 1, StorageAccountType: "Standard_LRS"}}, time.Minute)
	if err == nil || !strings.Contains(err.Error(), "was replaced since version 1.0.0 was made") || !strings.Contains(err.Error(), "it was written since (ETag") {
		t.Fatalf("replicate from a replaced blob: %v", err)
	}
}

// testDropManagedImage: keep_managed_image = false removes the managed image
// once the version has replicated; a re-run is still a no-op.
func testDropManagedImage(t *testing.T, e *testEnv) {
	ctx := context.Background()
	d := e.desired(t, e.pipeline(t, makeDisk(t, "V1", 5), "", "keep_managed_image = false"))
	if _, err := e.pub.Publish(ctx, d); err != nil {
		t.Fatal(err)
	}
	if e.emu.Server.Exists(ResourceID{Subscription: e.sub, ResourceGroup: e.rg, Image: "web-1.0.0"}.String()) {
		t.Fatal("managed image kept")
	}
	plan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.pub.Apply(ctx, plan); err != nil {
		t.Fatal(err)
	}
	if st := e.emu.Server.ProvisioningState(d.id("1.0.0").String()); st != "Succeeded" {
		t.Fatalf("version %s", st)
	}
}

// testLocationWarning: a resource group elsewhere is a warning, never an error.
func testLocationWarning(t *testing.T, e *testEnv) {
	ctx := context.Background()
	if _, err := e.pub.Clients.ResourceGroups.CreateOrUpdate(ctx, e.rg, armresources.ResourceGroup{Location: to.Ptr("northeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 6), "", ""))
	plan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Warnings) != 1 || !strings.Contains(plan.Warnings[0], "resource group "+e.rg+" is in northeurope, not in westeurope") ||
		!strings.Contains(plan.Text(), "warning: resource group") {
		t.Fatalf("warnings %q\n%s", plan.Warnings, plan.Text())
	}
}

type memRecorder struct{ steps []StepRecord }

func (m *memRecorder) RecordStep(_ context.Context, s StepRecord) error {
	m.steps = append(m.steps, s)
	return nil
}

// testDirectToDisk: upload = "disk" uploads into a managed disk and makes
// the version from it; an unfinished disk is made again; destroy removes it.
func testDirectToDisk(t *testing.T, e *testEnv) {
	ctx := context.Background()
	src := makeDiskSized(t, "V2", 7, 24<<20) // Azure's minimum upload is 20 MiB
	d := e.desired(t, e.pipeline(t, src, "", `upload = "disk"`))
	plan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"create resource_group", "create gallery", "create definition", "upload managed_disk", "create version", "wait replication"}
	if got := actions(plan); !slices.Equal(got, want) {
		t.Fatalf("plan = %v\n%s", got, plan.Text())
	}
	// killed in the middle of the upload: the re-run makes the disk again
	kctx, cancel := context.WithCancel(ctx)
	e.pub.OnEvent = func(ev Event) {
		if ev.Phase == "progress" && ev.Step.Kind == KindDisk {
			cancel()
		}
	}
	if _, err := e.pub.Apply(kctx, plan); !errors.Is(err, context.Canceled) {
		t.Fatalf("killed upload: %v", err)
	}
	e.pub.OnEvent = nil
	if !e.emu.Server.Exists(d.diskID("1.0.0")) {
		t.Fatal("the killed upload did not get as far as making the disk")
	}
	replan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(replan); !slices.Contains(got, "delete managed_disk") || !slices.Contains(got, "upload managed_disk") {
		t.Fatalf("re-plan after a killed upload: %v\n%s", got, replan.Text())
	}
	if _, err := e.pub.Apply(ctx, replan); err != nil {
		t.Fatalf("%v\n%s", err, Explain(err))
	}
	v, err := e.pub.Clients.Versions.Get(ctx, e.rg, galleryFor(e.rg), "web", "1.0.0", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !SameID(*v.Properties.StorageProfile.Source.ID, d.diskID("1.0.0")) || tag(v.Tags, TagDiskID) == "" {
		t.Fatalf("version source %+v tags %v", v.Properties.StorageProfile.Source, v.Tags)
	}
	if plan, err := e.pub.Plan(ctx, d); err != nil || plan.HasChanges() {
		t.Fatalf("second plan: %v\n%s", err, plan.Text())
	}
	gid, _ := ParseResourceID(d.id("").GalleryID())
	dp, err := e.pub.PlanDestroy(ctx, gid, false)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(dp.Text(), "- delete managed_disk") {
		t.Fatalf("destroy plan:\n%s", dp.Text())
	}
	if err := e.pub.Destroy(ctx, dp); err != nil {
		t.Fatal(err)
	}
	if e.emu.Server.Exists(d.diskID("1.0.0")) {
		t.Fatal("disk left behind")
	}
}

// testFailedVersionRemade: a version left Failed by an earlier run is
// deleted and made again by the next publish.
func testFailedVersionRemade(t *testing.T, e *testEnv) {
	ctx := context.Background()
	d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", 8), "", ""))
	e.pub.Attempts = 1
	e.pub.OnEvent = func(ev Event) {
		if ev.Phase == "start" && ev.Step.Kind == KindVersion && ev.Step.Action == ActCreate {
			e.emu.Server.SetFaults(azemu.Faults{Seed: 1, LROFailure: 1})
		}
	}
	_, err := e.pub.Publish(ctx, d)
	e.emu.Server.SetFaults(azemu.Faults{})
	e.pub.OnEvent = nil
	if err == nil {
		t.Fatal("the version's failing operation went unnoticed")
	}
	vid := d.id("1.0.0").String()
	if st := e.emu.Server.ProvisioningState(vid); st != "Failed" {
		t.Fatalf("version state %q, want Failed", st)
	}
	plan, err := e.pub.Plan(ctx, d)
	if err != nil {
		t.Fatal(err)
	}
	if got := actions(plan); !slices.Contains(got, "delete version") || !slices.Contains(got, "create version") {
		t.Fatalf("plan for a Failed version: %v\n%s", got, plan.Text())
	}
	if _, err := e.pub.Apply(ctx, plan); err != nil {
		t.Fatalf("%v\n%s", err, Explain(err))
	}
	if st := e.emu.Server.ProvisioningState(vid); st != "Succeeded" {
		t.Fatalf("version state %q after re-run", st)
	}
}
