package transfer

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
)

// PageBlob is the part of the azblob page blob client an upload uses.
// *pageblob.Client satisfies it.
type PageBlob interface {
	UploadPages(ctx context.Context, body io.ReadSeekCloser, contentRange blob.HTTPRange, options *pageblob.UploadPagesOptions) (pageblob.UploadPagesResponse, error)
	NewGetPageRangesPager(o *pageblob.GetPageRangesOptions) *runtime.Pager[pageblob.GetPageRangesResponse]
	DownloadStream(ctx context.Context, o *blob.DownloadStreamOptions) (blob.DownloadStreamResponse, error)
	SetHTTPHeaders(ctx context.Context, httpHeaders blob.HTTPHeaders, o *blob.SetHTTPHeadersOptions) (blob.SetHTTPHeadersResponse, error)
}

// Target is where an upload writes: a page blob, or a managed disk opened
// for direct upload. Both end as a page blob of exactly the VHD's size.
type Target interface {
	// Identity names the target without any secret (it goes into checkpoints).
	Identity() TargetIdentity
	// Prepare makes the destination ready for exactly size bytes and returns
	// the page blob to write plus the marker that identifies this incarnation
	// of the target. With resume set, it reopens the existing target and
	// refuses one whose size or marker differs; otherwise it creates it
	// (replacing an existing page blob only when overwrite is set).
	Prepare(ctx context.Context, size int64, resume *Checkpoint, overwrite bool) (PageBlob, string, error)
	// Finish releases what Prepare acquired (a managed disk's write SAS). It
	// is called once after every Prepare, whether the upload worked or not.
	Finish(ctx context.Context) error
	// Stats counts the HTTP attempts made for this target.
	Stats() *Stats
}

// ErrTargetChanged is returned when a resume finds a target that is not the
// one the checkpoint was written for.
var ErrTargetChanged = errors.New("upload target changed since the checkpoint was written")

// ErrTargetExists is returned when a fresh upload would overwrite an
// existing target.
var ErrTargetExists = errors.New("upload target already exists")

// ClientConfig tunes the HTTP clients a target builds.
type ClientConfig struct {
	// Retry overrides DefaultRetry when non-zero.
	Retry policy.RetryOptions
	// Transport overrides the default HTTP transport (tests).
	Transport policy.Transporter
}

// BlobCredential selects how a page blob target authenticates. At most one
// of the fields is set; with none, the URL must carry a SAS token.
type BlobCredential struct {
	AccountName, AccountKey string // shared key
	ConnectionString        string // account endpoint and key; the URL's host is ignored
	Token                   azcore.TokenCredential
}

// BlobTarget uploads to a page blob in a storage account.
type BlobTarget struct {
	client *pageblob.Client
	id     TargetIdentity
	stats  *Stats
}

const markerKey = "imgpipeupload"

// NewBlobTarget returns a target for the page blob at blobURL
// (https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB, optionally with a
// SAS query string). With a connection string, blobURL may instead be just
// "CONTAINER/BLOB".
func NewBlobTarget(blobURL string, cred BlobCredential, cfg ClientConfig) (*BlobTarget, error) {
	st := &Stats{}
	opts := &pageblob.ClientOptions{ClientOptions: clientOptions(st, cfg.Retry, cfg.Transport)}
	var (
		c   *pageblob.Client
		err error
	)
	switch {
	case cred.ConnectionString != "":
		container, name, ok := strings.Cut(strings.TrimPrefix(blobURL, "/"), "/")
		if strings.Contains(blobURL, "://") {
			container, name, ok = containerBlobFromURL(blobURL)
		}
		if !ok || container == "" || name == "" {
			return nil, fmt.Errorf("blob %q: give CONTAINER/BLOB with a connection string", Scrub(blobURL))
		}
		c, err = pageblob.NewClientFromConnectionString(cred.ConnectionString, container, name, opts)
	case cred.AccountKey != "":
		var kc *blob.SharedKeyCredential
		kc, err = blob.NewSharedKeyCredential(cred.AccountName, cred.AccountKey)
		if err == nil {
			c, err = pageblob.NewClientWithSharedKeyCredential(blobURL, kc, opts)
		}
	case cred.Token != nil:
		c, err = pageblob.NewClient(blobURL, cred.Token, opts)
	default:
		c, err = pageblob.NewClientWithNoCredential(blobURL, opts)
	}
	if err != nil {
		return nil, fmt.Errorf("page blob client: %w", scrubErr(err))
	}
	u, err := stripQuery(c.URL())
	if err != nil {
		return nil, err
	}
	return &BlobTarget{client: c, id: TargetIdentity{Kind: "blob", URL: u}, stats: st}, nil
}

func containerBlobFromURL(u string) (container, name string, ok bool) {
	s, err := stripQuery(u)
	if err != nil {
		return "", "", false
	}
	_, rest, _ := strings.Cut(s, "://")
	_, path, _ := strings.Cut(rest, "/")
	parts := strings.Split(path, "/")
	// Azurite style URLs carry the account as the first path segment.
	if len(parts) >= 3 && strings.HasPrefix(parts[0], "devstore") {
		parts = parts[1:]
	}
	if len(parts) < 2 {
		return "", "", false
	}
	return parts[0], strings.Join(parts[1:], "/"), true
}

func (t *BlobTarget) Identity() TargetIdentity { return t.id }
func (t *BlobTarget) Stats() *Stats            { return t.stats }
func (t *BlobTarget) Finish(context.Context) error {
	return nil
}

// Client returns the underlying page blob client (for tests and verification).
func (t *BlobTarget) Client() *pageblob.Client { return t.client }

func (t *BlobTarget) Prepare(ctx context.Context, size int64, resume *Checkpoint, overwrite bool) (PageBlob, string, error) {
	props, err := t.client.GetProperties(ctx, nil)
	exists := err == nil
	if err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) && !isStatus(err, http.StatusNotFound) {
		return nil, "", fmt.Errorf("look up %s: %w", t.id, scrubErr(err))
	}
	if resume != nil {
		if !exists {
			return nil, "", fmt.Errorf("%w: %s no longer exists; delete the checkpoint to upload from the start", ErrTargetChanged, t.id)
		}
		if props.BlobType == nil || *props.BlobType != blob.BlobTypePageBlob {
			return nil, "", fmt.Errorf("%w: %s is not a page blob", ErrTargetChanged, t.id)
		}
		if props.ContentLength == nil || *props.ContentLength != size {
			return nil, "", fmt.Errorf("%w: %s has %d bytes, the upload needs %d", ErrTargetChanged, t.id, deref(props.ContentLength), size)
		}
		if m := metaValue(props.Metadata, markerKey); m != resume.Marker {
			return nil, "", fmt.Errorf("%w: %s was replaced by another writer (marker %q, checkpoint %q); delete the checkpoint to upload from the start", ErrTargetChanged, t.id, m, resume.Marker)
		}
		return t.client, resume.Marker, nil
	}
	if exists && !overwrite {
		return nil, "", fmt.Errorf("%w: %s; use --resume to continue an interrupted upload or --overwrite to replace it", ErrTargetExists, t.id)
	}
	marker := newMarker()
	opts := &pageblob.CreateOptions{Metadata: map[string]*string{markerKey: &marker}}
	if !exists {
		// Never clobber a blob that appeared meanwhile.
		opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: to.Ptr(azcore.ETagAny)}}
	}
	if _, err := t.client.Create(ctx, size, opts); err != nil {
		if bloberror.HasCode(err, bloberror.ContainerNotFound) {
			return nil, "", fmt.Errorf("create %s: the container does not exist; create it first (az storage container create): %w", t.id, scrubErr(err))
		}
		return nil, "", fmt.Errorf("create %s: %w", t.id, scrubErr(err))
	}
	return t.client, marker, nil
}

func metaValue(m map[string]*string, key string) string {
	for k, v := range m {
		if strings.EqualFold(k, key) && v != nil {
			return *v
		}
	}
	return ""
}

func newMarker() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func deref[T any](p *T) T {
	var z T
	if p == nil {
		return z
	}
	return *p
}

func isStatus(err error, code int) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == code
}

// DiskOptions describe the managed disk created for a direct upload.
type DiskOptions struct {
	Location string // required when the disk does not exist yet
	SKU      string // default Standard_LRS
	// HyperVGeneration is "V1" or "V2"; empty leaves it unset.
	HyperVGeneration string
	// OSType ("Linux", "Windows") and SecurityType (e.g. "TrustedLaunch")
	// make the disk an OS disk a gallery version can be made from; empty
	// leaves them unset (Azure then treats the disk as a generation 1 data
	// disk; azemu refuses such a disk as the source of a V2 definition).
	OSType       string
	SecurityType string
	// AccessDuration is how long the write SAS is valid (default 24h).
	AccessDuration time.Duration
	// Blob configures the page blob client that writes through the SAS.
	Blob ClientConfig
}

// DiskTarget uploads into a managed disk created with createOption Upload:
// the disk is created with the exact size, beginGetAccess (Write) gives a
// SAS URL to its page blob, and endGetAccess is called when done.
type DiskTarget struct {
	disks   *armcompute.DisksClient
	rg      string
	name    string
	id      string
	opts    DiskOptions
	stats   *Stats
	granted bool
}

// NewDiskTarget returns a target for the managed disk with resource id
// diskID (/subscriptions/S/resourceGroups/RG/providers/Microsoft.Compute/disks/NAME).
func NewDiskTarget(diskID string, cred azcore.TokenCredential, armOpts *arm.ClientOptions, o DiskOptions) (*DiskTarget, error) {
	rid, err := arm.ParseResourceID(diskID)
	if err != nil || !strings.EqualFold(rid.ResourceType.String(), "Microsoft.Compute/disks") {
		return nil, fmt.Errorf("--disk %q is not a managed disk id: use /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/disks/NAME", diskID)
	}
	dc, err := armcompute.NewDisksClient(rid.SubscriptionID, cred, armOpts)
	if err != nil {
		return nil, fmt.Errorf("disks client: %w", err)
	}
	if o.SKU == "" {
		o.SKU = string(armcompute.DiskStorageAccountTypesStandardLRS)
	}
	if o.AccessDuration == 0 {
		o.AccessDuration = 24 * time.Hour
	}
	return &DiskTarget{disks: dc, rg: rid.ResourceGroupName, name: rid.Name, id: rid.String(), opts: o, stats: &Stats{}}, nil
}

func (t *DiskTarget) Identity() TargetIdentity { return TargetIdentity{Kind: "disk", DiskID: t.id} }
func (t *DiskTarget) Stats() *Stats            { return t.stats }

func diskMarker(d *armcompute.Disk) string {
	if d.Properties == nil {
		return ""
	}
	if d.Properties.UniqueID != nil {
		return *d.Properties.UniqueID
	}
	if d.Properties.TimeCreated != nil {
		return d.Properties.TimeCreated.UTC().Format(time.RFC3339Nano)
	}
	return ""
}

func diskState(d *armcompute.Disk) string {
	if d.Properties == nil || d.Properties.DiskState == nil {
		return "in an unknown state"
	}
	return string(*d.Properties.DiskState)
}

func diskUploadSize(d *armcompute.Disk) int64 {
	if d.Properties == nil || d.Properties.CreationData == nil {
		return 0
	}
	return deref(d.Properties.CreationData.UploadSizeBytes)
}

func (t *DiskTarget) Prepare(ctx context.Context, size int64, resume *Checkpoint, overwrite bool) (PageBlob, string, error) {
	got, err := t.disks.Get(ctx, t.rg, t.name, nil)
	exists := err == nil
	if err != nil && !isStatus(err, http.StatusNotFound) {
		return nil, "", fmt.Errorf("look up %s: %w", t.Identity(), scrubErr(err))
	}
	var marker string
	switch {
	case resume != nil:
		if !exists {
			return nil, "", fmt.Errorf("%w: %s no longer exists; delete the checkpoint to upload from the start", ErrTargetChanged, t.Identity())
		}
		if s := diskUploadSize(&got.Disk); s != size {
			return nil, "", fmt.Errorf("%w: %s was created for %d bytes, the upload needs %d", ErrTargetChanged, t.Identity(), s, size)
		}
		if m := diskMarker(&got.Disk); m != resume.Marker {
			return nil, "", fmt.Errorf("%w: %s was recreated (unique id %q, checkpoint %q); delete the checkpoint to upload from the start", ErrTargetChanged, t.Identity(), m, resume.Marker)
		}
		// Azure grants upload (Write) access to a disk in ReadyToUpload, and
		// again while it is ActiveUpload (a process killed before it revoked
		// access, or a SAS that expired): the new grant renews the SAS and
		// the pages written so far stay. Once access was revoked the disk
		// is no longer uploadable (Unattached): that upload has ended.
		// (learn.microsoft.com/azure/virtual-machines/linux/disks-upload-vhd-to-managed-disk-cli)
		if st := diskState(&got.Disk); st != string(armcompute.DiskStateReadyToUpload) && st != string(armcompute.DiskStateActiveUpload) {
			return nil, "", fmt.Errorf("%w: %s is %s, and Azure gives upload access only to a disk in ReadyToUpload or ActiveUpload: delete the disk, delete the checkpoint, and upload again", ErrTargetChanged, t.Identity(), st)
		}
		marker = resume.Marker
	case exists:
		return nil, "", fmt.Errorf("%w: %s; use --resume to continue an interrupted upload, or delete the disk", ErrTargetExists, t.Identity())
	default:
		if t.opts.Location == "" {
			return nil, "", fmt.Errorf("creating %s needs a location: pass --location", t.Identity())
		}
		d := armcompute.Disk{
			Location: to.Ptr(t.opts.Location),
			SKU:      &armcompute.DiskSKU{Name: to.Ptr(armcompute.DiskStorageAccountTypes(t.opts.SKU))},
			Properties: &armcompute.DiskProperties{
				CreationData: &armcompute.CreationData{
					CreateOption:    to.Ptr(armcompute.DiskCreateOptionUpload),
					UploadSizeBytes: to.Ptr(size),
				},
			},
		}
		if t.opts.HyperVGeneration != "" {
			d.Properties.HyperVGeneration = to.Ptr(armcompute.HyperVGeneration(t.opts.HyperVGeneration))
		}
		if t.opts.OSType != "" {
			d.Properties.OSType = to.Ptr(armcompute.OperatingSystemTypes(t.opts.OSType))
		}
		if t.opts.SecurityType != "" {
			d.Properties.SecurityProfile = &armcompute.DiskSecurityProfile{SecurityType: to.Ptr(armcompute.DiskSecurityTypes(t.opts.SecurityType))}
		}
		poller, err := t.disks.BeginCreateOrUpdate(ctx, t.rg, t.name, d, nil)
		if err != nil {
			return nil, "", fmt.Errorf("create %s: %w", t.Identity(), scrubErr(err))
		}
		res, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
		if err != nil {
			return nil, "", fmt.Errorf("create %s: %w", t.Identity(), scrubErr(err))
		}
		marker = diskMarker(&res.Disk)
		if marker == "" {
			if g, err := t.disks.Get(ctx, t.rg, t.name, nil); err == nil {
				marker = diskMarker(&g.Disk)
			}
		}
	}
	gp, err := t.disks.BeginGrantAccess(ctx, t.rg, t.name, armcompute.GrantAccessData{
		Access:            to.Ptr(armcompute.AccessLevelWrite),
		DurationInSeconds: to.Ptr(int32(t.opts.AccessDuration / time.Second)),
	}, nil)
	if err != nil {
		return nil, "", fmt.Errorf("grant write access to %s: %w", t.Identity(), scrubErr(err))
	}
	t.granted = true
	acc, err := gp.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
	if err != nil {
		return nil, "", fmt.Errorf("grant write access to %s: %w", t.Identity(), scrubErr(err))
	}
	if acc.AccessSAS == nil || *acc.AccessSAS == "" {
		return nil, "", fmt.Errorf("grant write access to %s: no SAS URL in the answer", t.Identity())
	}
	opts := &pageblob.ClientOptions{ClientOptions: clientOptions(t.stats, t.opts.Blob.Retry, t.opts.Blob.Transport)}
	c, err := pageblob.NewClientWithNoCredential(*acc.AccessSAS, opts)
	if err != nil {
		return nil, "", fmt.Errorf("page blob client for %s: %w", t.Identity(), scrubErr(err))
	}
	return c, marker, nil
}

// Finish revokes the write SAS (endGetAccess); it runs even when ctx was
// cancelled, with its own time limit.
func (t *DiskTarget) Finish(ctx context.Context) error {
	if !t.granted {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Minute)
	defer cancel()
	p, err := t.disks.BeginRevokeAccess(ctx, t.rg, t.name, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second})
	}
	if err != nil {
		return fmt.Errorf("revoke write access to %s (run: az disk revoke-access): %w", t.Identity(), scrubErr(err))
	}
	t.granted = false
	return nil
}
