package azure

import (
	"errors"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

// Action is what a step does.
type Action string

// Kind is the kind of resource a step is about.
type Kind string

// Step is one line of a plan.
type Step struct {
	Action  Action   `json:"action"`
	Kind    Kind     `json:"kind"`
	Name    string   `json:"name"`
	ID      string   `json:"id,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Changes []string `json:"changes,omitempty"`

	share *config.Share
}

// Mutates reports whether the step changes anything in Azure.
func (s Step) Mutates() bool { return s.Action != ActKeep && s.Action != ActWait }

// Plan is what a publish will do, decided from the pipeline file, the source
// and the current state in Azure.
type Plan struct {
	Target     string   `json:"target"`
	Image      string   `json:"image"`
	Version    string   `json:"version"`
	VersionID  string   `json:"version_id"`
	Generation string   `json:"generation"`
	Source     *Source  `json:"source,omitempty"`
	Steps      []Step   `json:"steps"`
	Warnings   []string `json:"warnings,omitempty"`

	d         *Desired
	st        *observed
	lastState string // the version's provisioning state as the replication watch last saw it
	pending   *runtime.Poller[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse]
}

// HasChanges reports whether applying the plan changes anything (waiting for
// a replication already running counts as a change to make).
func (p *Plan) HasChanges() bool {
	for _, s := range p.Steps {
		if s.Action != ActKeep {
			return true
		}
	}
	return false
}

// Desired is what the pipeline file asks for.
type Desired struct {
	Image config.Image
	Azure config.Azure
	// Source is the disk being published; nil when it does not exist yet
	// (a Packer build not run yet): the plan then cannot decide the
	// generation or whether an existing version matches.
	Source *Source
}

// PlanError is a refusal decided before anything changes in Azure.
type PlanError struct{ Msg string }

func (e *PlanError) Error() string { return e.Msg }

func planErrorf(format string, a ...any) error { return &PlanError{fmt.Sprintf(format, a...)} }

// Version tags: what the version was made from.
const (
	TagSourceDigest = "imgpipe.source.digest"
	TagSourceFile   = "imgpipe.source.file"
	TagBlobURL      = "imgpipe.blob.url"
	TagBlobMD5      = "imgpipe.blob.md5"
	TagBlobSize     = "imgpipe.blob.size"
	TagImageID      = "imgpipe.image.id"
	TagImageCreated = "imgpipe.image.created"
	TagDiskID       = "imgpipe.disk.id"
	TagGeneration   = "imgpipe.generation"
	TagRun          = "imgpipe.run"
	metaDigest      = "imgpipe_source_digest" // blob metadata key (C# identifier rules)
)

func (d *Desired) blobName(version string) string {
	return d.Azure.Definition + "-" + version + ".vhd"
}

func (d *Desired) imageName(version string) string { return d.Azure.Definition + "-" + version }

// containerURL is the URL of the storage container (no SAS).
func (d *Desired) containerURL() string {
	s := d.Azure.Storage
	ep := s.BlobEndpoint
	if ep == "" {
		ep = "https://" + s.Account + ".blob.core.windows.net"
	}
	return ep + "/" + s.Container
}

func (d *Desired) blobURL(version string) string { return d.containerURL() + "/" + d.blobName(version) }

func (d *Desired) storageAccountID() string {
	s := d.Azure.Storage
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Storage/storageAccounts/%s", d.Azure.Subscription, s.ResourceGroup, s.Account)
}

func (d *Desired) diskID(version string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute/disks/%s", d.Azure.Subscription, d.Azure.ResourceGroup, d.imageName(version))
}

func (d *Desired) id(version string) ResourceID {
	return ResourceID{Subscription: d.Azure.Subscription, ResourceGroup: d.Azure.ResourceGroup, Gallery: d.Azure.Gallery, Definition: d.Azure.Definition, Version: version}
}

// identifier is the definition's publisher/offer/sku, with defaults.
func (d *Desired) identifier() (pub, offer, sku string) {
	pub, offer, sku = d.Image.Publisher, d.Image.Offer, d.Image.SKU
	if pub == "" {
		pub = "imgpipe"
	}
	if offer == "" {
		offer = d.Image.Name
	}
	if sku == "" {
		sku = d.Azure.Definition
	}
	return
}

// errNoSource is returned by Apply when the plan was made without a source.
var errNoSource = errors.New("the image has not been built yet: run the build first, or set source in the image block")
