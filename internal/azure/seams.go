package azure

import (
	"context"
	"time"

	"imgpipe/internal/progress"
	"imgpipe/internal/transfer"
)

// Uploader puts a disk image (VHDX, VHD or raw, streamed as an Azure-ready
// fixed VHD) into a page blob. internal/transfer implements it; the CLI
// adapts it. blobURL carries no SAS: credentials are the uploader's.
type Uploader interface {
	UploadToBlob(ctx context.Context, source, blobURL string, p progress.Func) (UploadResult, error)
	// UploadToDisk creates the managed disk diskID for direct upload (in
	// location, with the Hyper-V generation), uploads source into it and
	// ends the upload (endGetAccess).
	UploadToDisk(ctx context.Context, source, diskID string, d DiskSpec, p progress.Func) (UploadResult, error)
}

// DiskSpec describes the managed disk made for a direct upload.
type DiskSpec struct {
	Location         string
	HyperVGeneration string
	// OSType and SecurityType make it the OS disk a version is made from
	// (Azure reads the generation, OS type and security type of a source
	// disk; a TrustedLaunch version needs a TrustedLaunch disk).
	OSType       string
	SecurityType string // "" for Standard
}

// UploadResult is what an upload made.
type UploadResult struct {
	MD5  []byte // Content-MD5 of the whole fixed VHD, as set on the blob (nil: not computed, the default)
	Size int64  // blob size in bytes (the fixed VHD, footer included)
	// Integrity says what the upload checked (per-request CRC64, MD5, read-back).
	Integrity transfer.Integrity
}

// BlobProps are the properties of a page blob imgpipe needs.
type BlobProps struct {
	Size     int64
	MD5      []byte // Content-MD5 (nil unless the upload computed it)
	ETag     string // changes on every write to the blob (blobprint.go)
	Metadata map[string]string
}

// BlobStore reads and removes blobs (the page blob a managed image or a
// version was made from). Stat returns (nil, nil) when the blob does not exist.
type BlobStore interface {
	Stat(ctx context.Context, blobURL string) (*BlobProps, error)
	SetMetadata(ctx context.Context, blobURL string, md map[string]string) error
	Delete(ctx context.Context, blobURL string) error
	EnsureContainer(ctx context.Context, containerURL string) error
}

// RunRecorder records what each step did (internal/pipeline records it in the catalog;
// nil records nothing).
type RunRecorder interface {
	RecordStep(ctx context.Context, s StepRecord) error
}

// StepRecord is one step of a run as recorded.
type StepRecord struct {
	Action      Action            `json:"action"`
	Kind        Kind              `json:"kind"`
	Name        string            `json:"name"`
	ResourceID  string            `json:"resource_id,omitempty"`
	Fingerprint map[string]string `json:"fingerprint,omitempty"`
	Status      string            `json:"status"` // "done", "failed", "skipped"
	Error       string            `json:"error,omitempty"`
	Started     time.Time         `json:"started"`
	Ended       time.Time         `json:"ended"`
}

// RegionProgress is the replication state of one target region.
type RegionProgress struct {
	Region   string `json:"region"`
	State    string `json:"state"` // Replicating, Completed, Failed, Unknown
	Progress int32  `json:"progress"`
	Details  string `json:"details,omitempty"`
}

// Event is reported while a publish runs (for progress display, and for
// tests that stop a run at a precise point).
type Event struct {
	Step    *Step
	Phase   string // "start", "begun" (the mutating call was accepted), "done"
	Regions []RegionProgress
	Bytes   [2]int64 // upload: done, total
}
