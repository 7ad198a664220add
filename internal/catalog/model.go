package catalog

import (
	"encoding/json"
	"time"
)

// CopyKind names one link of an image version's lineage.
type CopyKind string

// The lineage of a version: the build artifact, on-prem library copies, the
// page blob, the managed image made from it, the gallery image version, and
// the regions that version is replicated to.
const (
	KindArtifact       CopyKind = "artifact"
	KindOnprem         CopyKind = "onprem"
	KindBlob           CopyKind = "blob"
	KindManagedDisk    CopyKind = "managed_disk"
	KindManagedImage   CopyKind = "managed_image"
	KindGalleryVersion CopyKind = "gallery_version"
	KindRegion         CopyKind = "region"
)

// Kinds lists every copy kind in lineage (and dependency) order.
var Kinds = []CopyKind{KindArtifact, KindOnprem, KindBlob, KindManagedDisk, KindManagedImage, KindGalleryVersion, KindRegion}

func validKind(k CopyKind) bool {
	if k == KindTested { // a requirement, not a copy (testruns.go)
		return true
	}
	for _, x := range Kinds {
		if x == k {
			return true
		}
	}
	return false
}

// Copy states. Azure resources use Azure's provisioningState names; the
// catalog adds Present (files), Deprecated, Revoked and Deleted.
const (
	StateSucceeded  = "Succeeded"
	StateCreating   = "Creating"
	StateFailed     = "Failed"
	StatePresent    = "Present"
	StateDeprecated = "Deprecated"
	StateRevoked    = "Revoked"
	StateDeleted    = "Deleted"
)

// Version statuses.
const (
	StatusActive     = "active"
	StatusDeprecated = "deprecated"
	StatusRevoked    = "revoked"
	StatusDeleted    = "deleted"
)

// Image is a named image with its versions' summary.
type Image struct {
	Name      string            `json:"name"`
	Versions  int               `json:"versions"`
	Latest    string            `json:"latest,omitempty"`
	Channels  map[string]string `json:"channels,omitempty"` // channel -> version
	CreatedAt time.Time         `json:"created_at"`
}

// Provenance says where a version's bits came from.
type Provenance struct {
	GitCommit        string    `json:"git_commit,omitempty"`
	TemplateHash     string    `json:"template_hash,omitempty"`
	PackerVersion    string    `json:"packer_version,omitempty"`
	BuildID          string    `json:"build_id,omitempty"`
	BuildTime        time.Time `json:"build_time,omitzero"`
	ArtifactSHA256   string    `json:"artifact_sha256,omitempty"`
	HyperVGeneration string    `json:"hyperv_generation,omitempty"` // V1 or V2
	OSType           string    `json:"os_type,omitempty"`           // Linux or Windows
}

// Ref names a version of an image.
type Ref struct {
	Image   string `json:"image"`
	Version string `json:"version"`
}

func (r Ref) String() string { return r.Image + "@" + r.Version }

// NewVersion is what a build records.
type NewVersion struct {
	Image   string
	Version string
	Provenance
	Parent *Ref // the imgpipe image version this one was built on, if any
	Tags   map[string]string
}

// Version is one recorded image version.
type Version struct {
	ID      int64  `json:"id"`
	Image   string `json:"image"`
	Version string `json:"version"`
	Status  string `json:"status"`
	Provenance
	Parent       *Ref              `json:"parent,omitempty"`
	Tags         map[string]string `json:"tags,omitempty"`
	Channels     []string          `json:"channels,omitempty"` // channels currently pointing here
	CreatedAt    time.Time         `json:"created_at"`
	DeprecatedAt time.Time         `json:"deprecated_at,omitzero"`
	EndOfLife    time.Time         `json:"end_of_life,omitzero"`
	Revocation   *Revocation       `json:"revocation,omitempty"`
	Outdated     string            `json:"outdated,omitempty"` // why the version is outdated, if it is
}

// Ref returns the version's reference.
func (v Version) Ref() Ref { return Ref{Image: v.Image, Version: v.Version} }

// Copy is one copy of a version's bits (or a region its gallery version is
// replicated to), with the fingerprint that proves which bits it holds.
type Copy struct {
	ID          int64           `json:"id"`
	Kind        CopyKind        `json:"kind"`
	Location    string          `json:"location,omitempty"` // Azure region, host share, or path
	ResourceID  string          `json:"resource_id"`        // ARM id, blob URL (no SAS), or library path
	Fingerprint string          `json:"fingerprint,omitempty"`
	State       string          `json:"state,omitempty"`
	ParentID    int64           `json:"parent_id,omitempty"` // the copy this one was made from
	Detail      json.RawMessage `json:"detail,omitempty"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
	Ref         Ref             `json:"ref"`
}

// LineageNode is a copy with the copies made from it.
type LineageNode struct {
	Copy
	// Source names the copy this one was made from when that copy belongs
	// to another version (a shared source), e.g. "managed_image ... of web@1.2.0".
	Source   string         `json:"source,omitempty"`
	Children []*LineageNode `json:"children,omitempty"`
}

// Lineage is a version with its copies as a tree (artifact -> on-prem copies,
// blob -> managed image -> gallery version -> regions).
type Lineage struct {
	Version Version        `json:"version"`
	Roots   []*LineageNode `json:"lineage"`
	// Tests are the version's test runs, newest first (filled by imgpipe show).
	Tests []TestRun `json:"tests,omitempty"`
}

// Channel is a named pointer (test, prod...) to a version of an image.
type Channel struct {
	Image     string    `json:"image"`
	Name      string    `json:"name"`
	Version   string    `json:"version,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

// Promotion is one recorded move of a channel.
type Promotion struct {
	Image   string    `json:"image"`
	Channel string    `json:"channel"`
	From    string    `json:"from,omitempty"`
	To      string    `json:"to"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	NoOp    bool      `json:"no_op,omitempty"` // the channel already pointed there
}

// Requirement is a copy a version must have before a channel may point at it.
// An empty State accepts any state except Failed, Deleted and Revoked.
type Requirement struct {
	Kind  CopyKind `json:"kind"`
	State string   `json:"state,omitempty"`
}

// Revocation records why and by whom a version was revoked.
type Revocation struct {
	Reason  string    `json:"reason"`
	By      string    `json:"by"`
	At      time.Time `json:"at"`
	Cascade bool      `json:"cascade,omitempty"`
	Cause   *Ref      `json:"cause,omitempty"` // set when revoked because an ancestor was
}

// Run states.
const (
	RunRunning   = "running"
	RunSucceeded = "succeeded"
	RunFailed    = "failed"
)

// Run is one plan/publish/destroy/gc/build, with its steps.
type Run struct {
	ID        int64     `json:"id"`
	Kind      string    `json:"kind"`
	Image     string    `json:"image,omitempty"`
	Version   string    `json:"version,omitempty"`
	Status    string    `json:"status"`
	By        string    `json:"by,omitempty"`
	StartedAt time.Time `json:"started_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`
	Error     string    `json:"error,omitempty"`
	Steps     []Step    `json:"steps,omitempty"`
}

// Step is one step of a run and what it made.
type Step struct {
	Seq         int       `json:"seq"`
	Name        string    `json:"name"`
	Status      string    `json:"status"`
	Detail      string    `json:"detail,omitempty"`
	ResourceIDs []string  `json:"resource_ids,omitempty"`
	StartedAt   time.Time `json:"started_at"`
	EndedAt     time.Time `json:"ended_at,omitzero"`
}

// Host is a machine of the fleet and the image it reports running.
type Host struct {
	Name       string `json:"name"`
	Platform   string `json:"platform"` // onprem or azure
	Image      string `json:"image,omitempty"`
	Version    string `json:"version,omitempty"`
	ResourceID string `json:"resource_id,omitempty"`
	// Region is where the host runs: the site or region its agent is
	// configured with, or the Azure location the pull found ("" unknown).
	Region       string          `json:"region,omitempty"`
	LastReport   time.Time       `json:"last_report"`
	DriftSummary json.RawMessage `json:"drift_summary,omitempty"`
}
