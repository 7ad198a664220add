package pipeline

// Connecting a pipeline file's destinations: its azure block (--target when
// there are several) as the environment says, its on-prem libraries, the
// source inspected once and the catalog, into one ready Engine.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/emulatorenv"
	"imgpipe/internal/progress"
	"imgpipe/internal/supplychain"
)

// Target is a pipeline file's azure block connected to its subscription.
// Without a file, only Publisher is set.
type Target struct {
	File      *config.File
	Azure     *config.Azure
	Image     *config.Image
	Publisher *azure.Publisher
}

// OpenTarget loads the pipeline file at path ("" for none) and connects to
// subscription sub (the azure block's when "", else
// $AZURE_SUBSCRIPTION_ID) as the environment says (azure.Connect).
func OpenTarget(path, target, sub string) (*Target, error) {
	t := &Target{}
	account := ""
	if path != "" {
		file, err := config.Load(path)
		if err != nil {
			return nil, err
		}
		az, err := file.AzureTarget(target)
		if err != nil {
			return nil, err
		}
		StorageEndpointFromEnv(az) // the emulator's Azurite, when the file names no endpoint
		t.File, t.Azure, t.Image = file, az, file.Image(az.Image)
		sub = cmp.Or(sub, az.Subscription)
		if az.Storage != nil {
			account = az.Storage.Account
		}
	}
	if sub = cmp.Or(sub, os.Getenv("AZURE_SUBSCRIPTION_ID")); sub == "" {
		return nil, errors.New("no subscription: give -f pipeline.hcl, a full resource id, or set AZURE_SUBSCRIPTION_ID")
	}
	endpoint := ""
	if t.Azure != nil && t.Azure.Storage != nil {
		endpoint = t.Azure.Storage.BlobEndpoint
	}
	if err := emulatorenv.CheckEndpoints(endpoint); err != nil {
		return nil, err // a local emulator that is not running: say so now
	}
	var err error
	if t.Publisher, err = azure.Connect(sub, account); err != nil {
		return nil, err
	}
	return t, nil
}

// Connect opens a Publisher for a subscription as publish connects (the
// Fleet's Connect).
func Connect(sub string) (*azure.Publisher, error) {
	t, err := OpenTarget("", "", sub)
	if err != nil {
		return nil, err
	}
	return t.Publisher, nil
}

// StorageEndpointFromEnv fills the storage block's blob endpoint from
// IMGPIPE_BLOB_ENDPOINT (set by `source emulator.env`) when the pipeline
// file names none, so one file works with whatever port the emulator's
// Azurite got. It applies only when AZURE_STORAGE_ACCOUNT is unset or is
// the file's account.
func StorageEndpointFromEnv(az *config.Azure) {
	if az == nil || az.Storage == nil || az.Storage.BlobEndpoint != "" {
		return
	}
	ep := strings.TrimRight(os.Getenv(emulatorenv.EnvBlobEndpoint), "/")
	if acct := os.Getenv(emulatorenv.EnvStorageAccount); ep == "" || (acct != "" && !strings.EqualFold(acct, az.Storage.Account)) {
		return
	}
	az.Storage.BlobEndpoint = ep
}

// ResolveVersion turns VERSION (a full resource id, or with the pipeline
// file at path a bare version such as 1.2.3 of its gallery and definition)
// into a resource id.
func ResolveVersion(path, target, arg string) (azure.ResourceID, error) {
	if strings.HasPrefix(arg, "/") {
		return azure.ParseResourceID(arg)
	}
	if path == "" {
		return azure.ResourceID{}, fmt.Errorf("%q is not a resource id: give the full version id, or -f pipeline.hcl with a bare version", arg)
	}
	if !config.ValidVersion(arg) {
		return azure.ResourceID{}, fmt.Errorf("%q is not a version (Major.Minor.Patch)", arg)
	}
	file, err := config.Load(path)
	if err != nil {
		return azure.ResourceID{}, err
	}
	az, err := file.AzureTarget(target)
	if err != nil {
		return azure.ResourceID{}, err
	}
	return azure.ResourceID{Subscription: az.Subscription, ResourceGroup: az.ResourceGroup, Gallery: az.Gallery, Definition: az.Definition, Version: arg}, nil
}

// Options say how Open connects a pipeline file's destinations and the
// engine over them.
type Options struct {
	Target             string        // the azure block, when the file has several
	Source             string        // the disk to publish instead of the image block's source
	Version            string        // for a file without an azure block ("": the engine picks)
	ReplicationTimeout time.Duration // > 0 overrides the file's replication_timeout
	// Catalog records the publish. When nil, the catalog CatalogFlag, the
	// file's catalog block, $IMGPIPE_CATALOG or the per-user one names is
	// opened as Need says (with CatalogHint on failure); NoCatalog: none.
	Catalog     *catalog.Catalog
	CatalogFlag string
	Need        catalog.Need
	CatalogHint string
	NoCatalog   bool
	// Events, if set, is told Azure's steps and replication.
	Events func(azure.Event)
	// Steps, if set, makes each on-prem destination's per-pass progress.
	Steps func() (func(name string) progress.Func, func())
	// Gate, if set, makes the test gate before channel moves.
	Gate func(*catalog.Catalog, *config.File) Gate
	By   string
}

// Session is a pipeline file's destinations for one image, connected, the
// request its source makes and the engine over them. Close it.
type Session struct {
	File    *config.File
	Image   *config.Image
	Azure   *config.Azure // nil: on premises only
	Request Request
	Engine  *Engine
	close   func() error
}

// Open loads the pipeline file at path and connects its destinations: the
// azure block (o.Target when several), then the image's onprem blocks; it
// inspects the source in one read and opens the catalog.
func Open(ctx context.Context, path string, o Options) (*Session, error) {
	file, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	s := &Session{File: file, close: func() error { return nil }}
	e := &Engine{By: o.By}
	if len(file.Azure) > 0 || o.Target != "" {
		t, err := OpenTarget(path, o.Target, "")
		if err != nil {
			return nil, err
		}
		if o.ReplicationTimeout > 0 {
			t.Azure.ReplicationTimeout = o.ReplicationTimeout
		}
		t.Publisher.OnEvent = o.Events
		s.Azure, s.Image = t.Azure, t.Image
		e.Destinations = append(e.Destinations, &Azure{Target: *t.Azure, Publisher: t.Publisher})
	} else {
		if len(file.OnPrem) == 0 {
			return nil, ErrNoDestination
		}
		s.Image = file.Image(file.OnPrem[0].Image)
	}
	for _, t := range file.OnPrem {
		if t.Image == s.Image.Name {
			d := &Onprem{Target: t}
			if o.Steps != nil {
				d.Step, d.Done = o.Steps()
			}
			e.Destinations = append(e.Destinations, d)
		}
	}
	info, err := InspectSource(ctx, s.Image, o.Source, s.Azure != nil)
	if err != nil {
		return nil, err
	}
	s.Request = Request{Image: s.Image, Version: o.Version, Source: info}
	cat := o.Catalog
	if cat == nil && !o.NoCatalog {
		if cat, err = OpenCatalog(ctx, o.CatalogFlag, file, o.Need, o.CatalogHint); err != nil {
			return nil, err
		}
		if cat != nil {
			s.close = cat.Close
		}
	}
	if cat != nil {
		e.Catalog = cat
		image := s.Image.Name
		for _, d := range e.Destinations {
			if az, ok := d.(*Azure); ok {
				az.Tags = func(ctx context.Context, version string) (map[string]string, error) {
					return supplychain.GalleryTags(ctx, cat, catalog.Ref{Image: image, Version: version})
				}
			}
		}
		if o.Gate != nil {
			e.Gate = o.Gate(cat, file) // the test gate before a channel that requires a test
		}
	}
	s.Engine = e
	return s, nil
}

// Close closes the catalog Open opened (not one given in Options).
func (s *Session) Close() error {
	if err := s.close(); err != nil {
		return fmt.Errorf("close the catalog: %w", err)
	}
	return nil
}

// Publish opens the pipeline file at path (Open) and publishes its image:
// with savedPlan ("" for none) exactly the plan saved there (path and
// o.Source default to the saved plan's), else a fresh plan that confirm
// accepts. confirm is asked only when a destination is off the site (Azure).
func Publish(ctx context.Context, path, savedPlan string, o Options, confirm func(*Plan) (bool, error)) (*Plan, *Result, error) {
	if o.Version != "" && !config.ValidVersion(o.Version) {
		return nil, nil, fmt.Errorf("--version %q: use MAJOR.MINOR.PATCH", o.Version)
	}
	var saved *Saved
	if savedPlan != "" {
		var err error
		if saved, err = ReadSavedFile(savedPlan); err != nil {
			return nil, nil, err
		}
		path = cmp.Or(path, saved.File)
		if o.Source == "" && saved.Source != nil {
			o.Source = saved.Source.Path
		}
	}
	if path == "" {
		return nil, nil, errors.New("give the pipeline file (-f pipeline.hcl) or a saved plan (--plan plan.json)")
	}
	s, err := Open(ctx, path, o)
	if err != nil {
		return nil, nil, err
	}
	plan, res, err := s.publish(ctx, path, saved, confirm)
	if cerr := s.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return plan, res, err
}

func (s *Session) publish(ctx context.Context, path string, saved *Saved, confirm func(*Plan) (bool, error)) (*Plan, *Result, error) {
	if saved != nil {
		sum, err := FileSHA256(path)
		if err != nil {
			return nil, nil, err
		}
		return s.Engine.PublishSaved(ctx, saved, sum, s.Request)
	}
	if s.Azure == nil {
		confirm = nil // on premises only: nothing leaves the site, no question
	}
	return s.Engine.Publish(ctx, s.Request, confirm)
}

// OpenFor is Open for a publish of img (a rebuild's) from artifact, with
// the catalog o gives: the pipeline file's destinations must publish that
// image. It returns the engine and the request.
func OpenFor(ctx context.Context, path string, img *config.Image, artifact string, o Options) (*Engine, Request, error) {
	o.Source = artifact
	s, err := Open(ctx, path, o)
	if err == nil && s.Image.Name != img.Name {
		err = errors.Join(fmt.Errorf("the destinations of %s publish image %s, not %s", path, s.Image.Name, img.Name), s.Close())
	}
	if err != nil {
		return nil, Request{}, err
	}
	return s.Engine, s.Request, nil
}
