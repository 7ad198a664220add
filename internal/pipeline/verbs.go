package pipeline

// The verbs that act on what publishes made, one call each from the CLI:
// plan, destroy, replicate, check-deploy and gc. Each resolves its
// arguments, connects, opens the catalog as its policy says and runs.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/supplychain"
)

// On names what a gallery verb acts on: Arg, a resource id or with File a
// bare version of the file's azure block (Target when several).
type On struct {
	File, Target, Arg string
	// CatalogFlag names the catalog (--catalog); it and the file's catalog
	// block are opened best effort: Azure holds the truth.
	CatalogFlag string
	By          string
	Events      func(azure.Event) // Azure's steps, if set
}

// PlanFile plans the publish of the pipeline file at path (with the
// catalog when there is one) and with out ("" for none) saves the plan
// there for Publish's savedPlan.
func PlanFile(ctx context.Context, path string, o Options, out string) (*Plan, error) {
	o.Need = catalog.IfPresent
	s, err := Open(ctx, path, o)
	if err != nil {
		return nil, err
	}
	plan, err := s.Engine.Plan(ctx, s.Request)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil && out != "" {
		err = SavePlanFile(plan, path, out, time.Now())
	}
	return plan, err
}

// withGallery connects to id's subscription (through on.File's azure
// block, when given) and runs f with a Gallery recording in the catalog
// (best effort).
func withGallery(ctx context.Context, on On, id azure.ResourceID, f func(*Gallery, *Target) error) error {
	t, err := OpenTarget(on.File, on.Target, id.Subscription)
	if err != nil {
		return err
	}
	t.Publisher.OnEvent = on.Events
	return withCatalog(ctx, on, t.File, func(cat *catalog.Catalog) error {
		g := &Gallery{Publisher: t.Publisher, Catalog: cat, By: on.By}
		if t.Image != nil {
			g.Image = t.Image.Name
		}
		return f(g, t)
	})
}

func withCatalog(ctx context.Context, on On, file *config.File, f func(*catalog.Catalog) error) error {
	cat, err := OpenCatalog(ctx, on.CatalogFlag, file, catalog.BestEffort, "")
	if err != nil {
		return err
	}
	if cat != nil {
		defer cat.Close()
	}
	return f(cat)
}

// OpenCatalog opens the catalog flag (--catalog), then file's catalog block
// (file may be nil), then $IMGPIPE_CATALOG, then the per-user one names, as
// need says (catalog.OpenLocated).
func OpenCatalog(ctx context.Context, flag string, file *config.File, need catalog.Need, hint string) (*catalog.Catalog, error) {
	fromFile := ""
	if file != nil && file.Catalog != nil {
		fromFile = file.Catalog.URL
	}
	return catalog.OpenLocated(ctx, flag, fromFile, need, hint)
}

// Destroyed is what destroy planned and, when Applied, deleted.
type Destroyed struct {
	ID      azure.ResourceID
	Plan    *azure.DestroyPlan
	Applied bool
}

// Destroy plans the removal of on.Arg (or with no Arg, the file's
// definition or gallery as scope says), lets confirm see the plan (false:
// nothing is deleted) and deletes it in dependency order; force also
// deletes versions still in use. Every failure is returned together.
func Destroy(ctx context.Context, on On, scope string, force bool, confirm func(*azure.DestroyPlan) (bool, error)) (*Destroyed, error) {
	var id azure.ResourceID
	var err error
	switch {
	case on.Arg != "":
		id, err = ResolveVersion(on.File, on.Target, on.Arg)
	case on.File != "":
		id, err = ResolveVersion(on.File, on.Target, "0.0.0")
		id.Version = ""
		switch scope {
		case "definition":
		case "gallery":
			id.Definition = ""
		default:
			return nil, errors.New("--scope must be definition or gallery (or give a VERSION)")
		}
	default:
		return nil, errors.New("say what to destroy: a resource id, or -f pipeline.hcl with VERSION or --scope")
	}
	if err != nil {
		return nil, err
	}
	events := on.Events
	on.Events = nil // none while planning
	d := &Destroyed{ID: id}
	err = withGallery(ctx, on, id, func(g *Gallery, _ *Target) error {
		if d.Plan, err = g.Publisher.PlanDestroy(ctx, id, force); err != nil {
			return err
		}
		if ok, err := confirm(d.Plan); err != nil || !ok || !d.Plan.HasChanges() {
			return err
		}
		g.Publisher.OnEvent = events
		d.Applied = true
		return g.Destroy(ctx, id, d.Plan)
	})
	return d, err
}

// Replication is what replicate is asked: regions to add (with Replicas
// and StorageAccountType) and to remove, and how long to wait (0: the
// file's replication_timeout, else 3h).
type Replication struct {
	Add, Remove        []string
	Replicas           int32
	StorageAccountType string
	Timeout            time.Duration
}

// Replicated is what replicate did: the regions removed (Removing: the
// removal asked for was done), and the result of adding (nil when only
// removing).
type Replicated struct {
	ID       azure.ResourceID
	Removing bool
	Removed  []string
	Result   *azure.ReplicateResult
}

// Replicate removes regions from the version on.Arg (the one way imgpipe
// drops a replica: publish and replicate never drop one by omission), then
// copies it to more regions after checking its source is the one it was
// made from.
func Replicate(ctx context.Context, on On, r Replication) (*Replicated, error) {
	if len(r.Add) == 0 && len(r.Remove) == 0 {
		return nil, errors.New("name at least one region with --add-region (or --remove-region)")
	}
	id, err := ResolveVersion(on.File, on.Target, on.Arg)
	if err != nil {
		return nil, err
	}
	if id.Kind() != "version" {
		return nil, fmt.Errorf("%s is not a version id", on.Arg)
	}
	switch r.StorageAccountType {
	case "Standard_LRS", "Standard_ZRS", "Premium_LRS":
	default:
		return nil, fmt.Errorf("--storage-account-type %q: use Standard_LRS, Standard_ZRS or Premium_LRS", r.StorageAccountType)
	}
	if r.Replicas < 1 || r.Replicas > 100 {
		return nil, fmt.Errorf("--replicas %d: use 1-100", r.Replicas)
	}
	var add []config.TargetRegion
	for _, name := range r.Add {
		add = append(add, config.TargetRegion{Name: config.NormalizeLocation(name), Replicas: r.Replicas, StorageAccountType: r.StorageAccountType})
	}
	out := &Replicated{ID: id}
	err = withGallery(ctx, on, id, func(g *Gallery, t *Target) error {
		if len(r.Remove) > 0 {
			if out.Removed, err = g.RemoveRegions(ctx, id, r.Remove); err != nil || len(add) == 0 {
				out.Removing = err == nil
				return err
			}
			out.Removing = true
		}
		if r.Timeout == 0 {
			r.Timeout = 3 * time.Hour
			if t.Azure != nil {
				r.Timeout = t.Azure.ReplicationTimeout
			}
		}
		out.Result, err = g.Replicate(ctx, id, add, r.Timeout)
		return err
	})
	return out, err
}

// Deployable is check-deploy's answer: Azure's, and the signed provenance
// check when the catalog records the version and trusts a key.
type Deployable struct {
	*azure.DeployCheck
	Provenance *supplychain.ProvenanceCheck `json:"provenance,omitempty"`
}

// Yes: deployable, and the provenance (if checked) verified.
func (d *Deployable) Yes() bool { return d.DeployCheck.OK && d.Provenance.OK() }

// CheckDeploy says whether a VM in subscription sub, region location, can
// be created from on.Arg (a version or a managed image), deployed by
// principal ("": the share blocks recorded); with a catalog (if present),
// it also verifies the version's signed provenance.
func CheckDeploy(ctx context.Context, on On, sub, location, principal string) (*Deployable, error) {
	if sub == "" || location == "" {
		return nil, errors.New("--subscription and --location are required")
	}
	id, err := ResolveVersion(on.File, on.Target, on.Arg)
	if err != nil {
		return nil, err
	}
	t, err := OpenTarget(on.File, on.Target, id.Subscription)
	if err != nil {
		return nil, err
	}
	d := &Deployable{}
	if d.DeployCheck, err = t.Publisher.CheckDeploy(ctx, id, sub, location, principal); err != nil {
		return nil, err
	}
	cat, err := OpenCatalog(ctx, on.CatalogFlag, nil, catalog.IfPresent, "")
	if err != nil || cat == nil {
		return d, err
	}
	defer cat.Close()
	d.Provenance, err = supplychain.ProvenanceOf(ctx, cat, id.String())
	return d, err
}

// ExcludeTags reads --exclude-tag values (KEY or KEY=VALUE) into p.
func ExcludeTags(p catalog.Policy, tags []string) (catalog.Policy, error) {
	for _, t := range tags {
		k, v, _ := strings.Cut(t, "=")
		if k == "" {
			return p, fmt.Errorf("--exclude-tag %q: use KEY or KEY=VALUE", t)
		}
		if p.ExcludeTags == nil {
			p.ExcludeTags = map[string]string{}
		}
		p.ExcludeTags[k] = v
	}
	return p, nil
}

// EnvFleet is the Fleet over the subscriptions of file's azure blocks (file
// may be nil) and $AZURE_SUBSCRIPTION_ID, connected as publish connects.
func EnvFleet(file *config.File) *Fleet {
	return NewFleet(Connect, file, os.Getenv("AZURE_SUBSCRIPTION_ID"))
}

// RevokerFor is the revoker of a copy kind (false: revoked by hand).
func RevokerFor(kind catalog.CopyKind) (func(ctx context.Context) (catalog.Revoker, error), bool) {
	switch kind {
	case catalog.KindGalleryVersion, catalog.KindOnprem:
		return func(ctx context.Context) (catalog.Revoker, error) { return EnvFleet(nil), nil }, true
	}
	return nil, false
}

// GCFile is GC with the pipeline file at path ("" for none): its retention
// block in every field given says no flag set (WithRetention), its catalog
// block and its subscriptions (EnvFleet); the catalog is required.
func GCFile(ctx context.Context, path, catalogFlag string, p catalog.Policy, given func(string) bool, apply bool, by string) (*GCReport, error) {
	var file *config.File
	if path != "" {
		var err error
		if file, err = config.Load(path); err != nil {
			return nil, err
		}
		p = WithRetention(p, file.Retention, given) // where no flag says otherwise
	}
	cat, err := OpenCatalog(ctx, catalogFlag, file, catalog.Required, "")
	if err != nil {
		return nil, err
	}
	rep, err := GC(ctx, cat, EnvFleet(file), p, apply, by)
	if cerr := cat.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("close the catalog: %w", cerr))
	}
	return rep, err
}
