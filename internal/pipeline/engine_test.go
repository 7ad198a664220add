package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/disk/disktest"
	"imgpipe/internal/source"
)

// env is azemu + Azurite through the real SDK, a catalog and a library.
type env struct {
	emu *azemutest.Env
	pub *azure.Publisher
	dir string
}

func startEnv(t *testing.T) *env {
	t.Helper()
	emu := azemutest.StartWithAzurite(t, azemu.Options{})
	co := emu.ClientOptions()
	clients, err := azure.NewClients(emu.SubscriptionID, emu.Credential(), co)
	if err != nil {
		t.Fatal(err)
	}
	access := azure.BlobAccess{AccountName: emu.Azurite.AccountName, AccountKey: emu.Azurite.AccountKey}
	return &env{emu: emu, dir: t.TempDir(), pub: &azure.Publisher{
		Clients:      clients,
		Blobs:        azure.NewBlobStore(access),
		Uploader:     &azure.TransferUploader{A: access, ARMCred: emu.Credential(), ARMOptions: co},
		PollInterval: 50 * time.Millisecond,
		Consistency:  azure.Consistency{Window: 20 * time.Second, Initial: 50 * time.Millisecond, Max: 500 * time.Millisecond},
		RunID:        "pipeline-test",
	}}
}

// writeDisk writes a small raw BIOS (V1) disk whose data depends on marker.
func writeDisk(t *testing.T, path, marker string) {
	t.Helper()
	b := make([]byte, 4<<20)
	copy(b, disktest.ActiveLinuxSector(0))
	copy(b[1<<20:], strings.Repeat("imgpipe pipeline test "+marker+" ", 1000))
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// setup is one publish: a pipeline file (azure + onprem), its disk, a
// catalog and the engine over both destinations.
type setup struct {
	file   *config.File
	disk   string
	lib    string
	cat    *catalog.Catalog
	engine *Engine
}

func (e *env) setup(t *testing.T, name string) *setup {
	t.Helper()
	dir := filepath.Join(e.dir, name)
	os.MkdirAll(dir, 0o755)
	s := &setup{disk: filepath.Join(dir, "disk.raw"), lib: filepath.Join(dir, "library")}
	writeDisk(t, s.disk, name)
	src := fmt.Sprintf(`
image "app" {
  source  = %q
  os_type = "Linux"
}
azure "emu" {
  subscription   = %q
  resource_group = %q
  location       = "westeurope"
  storage {
    account        = %q
    resource_group = "azemu-storage" # where the emulator registers its Azurite account
    container      = %q
    blob_endpoint  = %q
  }
  gallery    = "gal_%s" # gallery names are unique per subscription
  definition = "app"
  version    = "1.0.0"
  target_region "northeurope" {}
  replication_timeout = "1m"
}
onprem "lab" {
  library = %q
}
`, s.disk, e.emu.SubscriptionID, "rg-"+name, e.emu.Azurite.AccountName, strings.ToLower(strings.ReplaceAll(name, "_", "")), e.emu.Azurite.BlobEndpoint, name, s.lib)
	f, err := config.Parse([]byte(src), filepath.Join(dir, "pipeline.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	s.file = f
	cat, err := catalog.Open(context.Background(), filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	s.cat = cat
	az, err := f.AzureTarget("")
	if err != nil {
		t.Fatal(err)
	}
	s.engine = &Engine{Catalog: cat, By: "test", Destinations: []Destination{
		&Azure{Target: *az, Publisher: e.pub},
		&Onprem{Target: f.OnPrem[0]},
	}}
	return s
}

func (s *setup) request(t *testing.T) Request {
	t.Helper()
	info, err := source.Inspect(context.Background(), s.disk)
	if err != nil {
		t.Fatal(err)
	}
	return Request{Image: s.file.Image("app"), Source: info}
}

// lineage summarises the catalog's copies of app 1.0.0: kind state, by
// parent, in a stable order; it fails on two copies of one resource.
func (s *setup) lineage(t *testing.T) string {
	t.Helper()
	cps, err := s.cat.Copies(context.Background(), catalog.Ref{Image: "app", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	children := map[int64][]catalog.Copy{}
	var roots []catalog.Copy
	for _, c := range cps {
		key := string(c.Kind) + " " + strings.ToLower(c.ResourceID)
		if seen[key] {
			t.Errorf("two copies of %s", key)
		}
		seen[key] = true
		if c.ParentID == 0 {
			roots = append(roots, c)
		} else {
			children[c.ParentID] = append(children[c.ParentID], c)
		}
	}
	var show func(c catalog.Copy) string
	show = func(c catalog.Copy) string {
		s := string(c.Kind) + " " + c.State
		if c.Kind == catalog.KindRegion {
			s = "region " + c.Location + " " + c.State
		}
		var kids []string
		for _, k := range children[c.ID] {
			kids = append(kids, show(k))
		}
		sort.Strings(kids)
		switch len(kids) {
		case 0:
		case 1:
			s += " > " + kids[0]
		default:
			s += " > [" + strings.Join(kids, ", ") + "]"
		}
		return s
	}
	var out []string
	for _, r := range roots {
		out = append(out, show(r))
	}
	return strings.Join(out, "; ")
}

const wantLineage = "artifact Present > [blob Succeeded > managed_image Succeeded > gallery_version Succeeded > [region northeurope Succeeded, region westeurope Succeeded], onprem Present]"

func (s *setup) onChannel(t *testing.T, channel string) bool {
	t.Helper()
	v, err := s.cat.Version(context.Background(), catalog.Ref{Image: "app", Version: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range v.Channels {
		if c == channel {
			return true
		}
	}
	return false
}

func (s *setup) runs(t *testing.T) []catalog.Run {
	t.Helper()
	runs, err := s.cat.Runs(context.Background(), catalog.RunFilter{Image: "app"})
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

// TestPublishAzureAndOnpremFromNothing publishes to both destinations
// through the engine, then again: the second publish plans no change,
// starts no run and records no second copy.
func TestPublishAzureAndOnpremFromNothing(t *testing.T) {
	e := startEnv(t)
	s := e.setup(t, "fresh")
	ctx := context.Background()
	plan, res, err := s.engine.Publish(ctx, s.request(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !plan.HasChanges() || plan.Version != "1.0.0" || len(res.Destinations) != 2 {
		t.Fatalf("plan %+v result %+v", plan, res)
	}
	if got := s.lineage(t); got != wantLineage {
		t.Fatalf("lineage\n got %s\nwant %s", got, wantLineage)
	}
	// the copies came from what apply returned: the version's fingerprint
	// is the source digest, the image's its creation time
	az := res.Destinations[0].Applied
	if az == nil || len(az.Copies) != 5 {
		t.Fatalf("azure copies: %+v", az)
	}
	for _, c := range az.Copies {
		if c.Kind == catalog.KindGalleryVersion && c.Fingerprint != plan.Source.Digest {
			t.Errorf("version fingerprint %q, want %q", c.Fingerprint, plan.Source.Digest)
		}
		if c.Kind == catalog.KindManagedImage && !strings.HasPrefix(c.Fingerprint, "created:20") {
			t.Errorf("managed image fingerprint %q", c.Fingerprint)
		}
	}
	v, err := s.cat.Version(ctx, catalog.Ref{Image: "app", Version: "1.0.0"})
	if err != nil || v.ArtifactSHA256 != plan.Source.SHA256 {
		t.Fatalf("version %+v: %v", v, err)
	}
	if v.HyperVGeneration != "V1" {
		t.Errorf("generation %q", v.HyperVGeneration)
	}
	if !s.onChannel(t, "test") {
		t.Fatalf("channel test is not on 1.0.0")
	}
	runs := s.runs(t)
	if len(runs) != 1 || runs[0].Status != catalog.RunSucceeded {
		t.Fatalf("runs: %+v", runs)
	}

	// a second publish: nothing to do, nothing duplicated
	plan, _, err = s.engine.Publish(ctx, s.request(t), func(p *Plan) (bool, error) {
		if p.HasChanges() {
			t.Errorf("second plan has changes:\n%s", p.Destinations[0].Plan.Text()+p.Destinations[1].Plan.Text())
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := s.lineage(t); got != wantLineage {
		t.Fatalf("after a second publish: lineage\n got %s\nwant %s", got, wantLineage)
	}
	if runs := s.runs(t); len(runs) != 1 {
		t.Fatalf("a no-op publish started a run: %+v", runs)
	}
}

// TestKillAfterEveryStepThenRerun stops a publish after each of its steps
// in turn (the context cancelled, as Ctrl-C or a kill would) and runs it
// again: it finishes, and neither the catalog nor Azure holds a duplicate.
func TestKillAfterEveryStepThenRerun(t *testing.T) {
	e := startEnv(t)
	for n := 1; ; n++ {
		s := e.setup(t, fmt.Sprintf("kill%d", n))
		ctx, cancel := context.WithCancel(context.Background())
		steps := 0
		var last string
		s.engine.AfterStep = func(_ context.Context, st Step) {
			steps++
			if steps == n {
				last = st.Destination + ": " + st.Action + " " + st.Kind + " " + st.Name
				cancel()
			}
		}
		_, _, err := s.engine.Publish(ctx, s.request(t), nil)
		cancel()
		if steps < n {
			if err != nil {
				t.Fatalf("uninterrupted publish: %v", err)
			}
			if n < 8 {
				t.Fatalf("a publish from nothing has only %d steps", steps)
			}
			break // every step has been interrupted once
		}
		if err == nil && last == "" {
			t.Fatalf("step %d: publish did not stop", n)
		}
		t.Logf("stopped after step %d (%s): %v", n, last, err)
		s.engine.AfterStep = nil
		if _, _, err := s.engine.Publish(context.Background(), s.request(t), nil); err != nil {
			t.Fatalf("re-run after step %d (%s): %v", n, last, err)
		}
		if got := s.lineage(t); got != wantLineage {
			t.Fatalf("after a stop at step %d (%s) and a re-run: lineage\n got %s\nwant %s", n, last, got, wantLineage)
		}
		// Azure holds one managed image and one version
		rg := "rg-" + fmt.Sprintf("kill%d", n)
		images := 0
		if _, err := e.pub.Clients.Images.Get(context.Background(), rg, "app-1.0.0", nil); err == nil {
			images++
		}
		versions := 0
		for pager := e.pub.Clients.Versions.NewListByGalleryImagePager(rg, "gal_"+fmt.Sprintf("kill%d", n), "app", nil); pager.More(); {
			page, err := pager.NextPage(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			versions += len(page.Value)
		}
		if images != 1 || versions != 1 {
			t.Fatalf("after a stop at step %d: %d managed images, %d versions", n, images, versions)
		}
		if !s.onChannel(t, "test") {
			t.Fatalf("after a stop at step %d: channel test not on 1.0.0", n)
		}
	}
}

// TestSavedPlan saves a plan, refuses it once the source changed (naming
// the change, with nothing made), and applies a fresh saved plan as made;
// a saved plan whose destination moved on is refused too.
func TestSavedPlan(t *testing.T) {
	e := startEnv(t)
	s := e.setup(t, "saved")
	ctx := context.Background()
	plan, err := s.engine.Plan(ctx, s.request(t))
	if err != nil {
		t.Fatal(err)
	}
	saved, err := plan.Save(s.file.Path, "file-sha", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var buf strings.Builder
	if err := json.NewEncoder(&buf).Encode(saved); err != nil {
		t.Fatal(err)
	}
	back, err := ReadSaved(strings.NewReader(buf.String()))
	if err != nil {
		t.Fatal(err)
	}
	// the pipeline file changed
	if _, _, err := s.engine.PublishSaved(ctx, back, "other-sha", s.request(t)); !errors.Is(err, ErrPlanChanged) || !strings.Contains(err.Error(), "pipeline file") {
		t.Fatalf("changed file: %v", err)
	}
	// the source changed
	writeDisk(t, s.disk, "something else")
	_, _, err = s.engine.PublishSaved(ctx, back, "file-sha", s.request(t))
	if !errors.Is(err, ErrPlanChanged) || !strings.Contains(err.Error(), "the source "+s.disk+" changed") || !strings.Contains(err.Error(), saved.Source.Digest) {
		t.Fatalf("changed source: %v", err)
	}
	if runs := s.runs(t); len(runs) != 0 {
		t.Fatalf("a refused plan started a run: %+v", runs)
	}
	if _, err := e.pub.Clients.ResourceGroups.Get(ctx, "rg-saved", nil); err == nil {
		t.Fatal("a refused plan changed Azure")
	}
	// a plan made now applies as it was made
	plan, err = s.engine.Plan(ctx, s.request(t))
	if err != nil {
		t.Fatal(err)
	}
	fresh, _ := plan.Save(s.file.Path, "file-sha", time.Now())
	if _, _, err := s.engine.PublishSaved(ctx, fresh, "file-sha", s.request(t)); err != nil {
		t.Fatal(err)
	}
	if got := s.lineage(t); got != wantLineage {
		t.Fatalf("lineage\n got %s\nwant %s", got, wantLineage)
	}
	// the destinations moved on since the plan was made: refused, naming them
	_, _, err = s.engine.PublishSaved(ctx, fresh, "file-sha", s.request(t))
	if !errors.Is(err, ErrPlanChanged) || !strings.Contains(err.Error(), "azure emu changed since the plan was made") {
		t.Fatalf("stale destinations: %v", err)
	}
}
