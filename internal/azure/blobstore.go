package azure

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"imgpipe/internal/progress"
	"imgpipe/internal/transfer"
)

// BlobAccess says how to reach blobs: a shared key, or an Entra ID token
// (the identity needs Storage Blob Data Contributor). Never logged.
type BlobAccess struct {
	AccountName, AccountKey string
	Token                   azcore.TokenCredential
	// ClientOptions (transport, retry) for the azblob clients.
	ClientOptions policy.ClientOptions
	// Transfer tunes the uploads (nil: defaults).
	Transfer *transfer.ClientConfig
	// Workers is the number of concurrent Put Page calls (0: default).
	Workers int
}

// azblobStore is the BlobStore over the azblob SDK.
type azblobStore struct{ a BlobAccess }

// NewBlobStore returns a BlobStore using a.
func NewBlobStore(a BlobAccess) BlobStore { return &azblobStore{a} }

// accountOf names the storage account of a blob URL: the first label of
// ACCOUNT.blob.core.windows.net, or the first path segment of an
// emulator URL (http://127.0.0.1:10000/ACCOUNT/container/blob).
func accountOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	host := u.Hostname()
	if net.ParseIP(host) != nil || host == "localhost" {
		return strings.SplitN(strings.TrimPrefix(u.Path, "/"), "/", 2)[0]
	}
	return strings.SplitN(host, ".", 2)[0]
}

func (a BlobAccess) account(u string) string {
	if a.AccountName != "" {
		return a.AccountName
	}
	return accountOf(u)
}

func (s *azblobStore) blob(u string) (*blob.Client, error) {
	o := &blob.ClientOptions{ClientOptions: s.a.ClientOptions}
	switch {
	case s.a.AccountKey != "":
		cred, err := blob.NewSharedKeyCredential(s.a.account(u), s.a.AccountKey)
		if err != nil {
			return nil, fmt.Errorf("storage shared key: %w", err)
		}
		return blob.NewClientWithSharedKeyCredential(u, cred, o)
	case s.a.Token != nil:
		return blob.NewClient(u, s.a.Token, o)
	}
	return nil, errors.New("no storage credential: set the storage account key or use an Entra ID identity with Storage Blob Data Contributor")
}

func (s *azblobStore) Stat(ctx context.Context, u string) (*BlobProps, error) {
	c, err := s.blob(u)
	if err != nil {
		return nil, err
	}
	p, err := c.GetProperties(ctx, nil)
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound, bloberror.ResourceNotFound) || isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	out := &BlobProps{MD5: p.ContentMD5, Metadata: map[string]string{}}
	if p.ContentLength != nil {
		out.Size = *p.ContentLength
	}
	if p.ETag != nil {
		out.ETag = string(*p.ETag)
	}
	for k, v := range p.Metadata {
		if v != nil {
			out.Metadata[lower(k)] = *v
		}
	}
	return out, nil
}

func lower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

func (s *azblobStore) SetMetadata(ctx context.Context, u string, md map[string]string) error {
	c, err := s.blob(u)
	if err != nil {
		return err
	}
	m := map[string]*string{}
	for k, v := range md {
		m[k] = to.Ptr(v)
	}
	_, err = c.SetMetadata(ctx, m, nil)
	return err
}

func (s *azblobStore) Delete(ctx context.Context, u string) error {
	c, err := s.blob(u)
	if err != nil {
		return err
	}
	_, err = c.Delete(ctx, &blob.DeleteOptions{DeleteSnapshots: to.Ptr(blob.DeleteSnapshotsOptionTypeInclude)})
	if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
		return nil
	}
	return err
}

func (s *azblobStore) EnsureContainer(ctx context.Context, u string) error {
	o := &container.ClientOptions{ClientOptions: s.a.ClientOptions}
	var c *container.Client
	var err error
	switch {
	case s.a.AccountKey != "":
		cred, cerr := container.NewSharedKeyCredential(s.a.account(u), s.a.AccountKey)
		if cerr != nil {
			return cerr
		}
		c, err = container.NewClientWithSharedKeyCredential(u, cred, o)
	case s.a.Token != nil:
		c, err = container.NewClient(u, s.a.Token, o)
	default:
		return errors.New("no storage credential")
	}
	if err != nil {
		return err
	}
	_, err = c.Create(ctx, nil)
	if err == nil || bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return nil
	}
	// A principal allowed to write blobs may not be allowed to create
	// containers: the upload itself will say if the container is missing.
	if bloberror.HasCode(err, bloberror.AuthorizationPermissionMismatch, bloberror.AuthorizationFailure) {
		return nil
	}
	return err
}

// TransferUploader is the Uploader over internal/transfer: a sparse,
// parallel, resumable page-blob upload straight from the source image.
type TransferUploader struct {
	A BlobAccess
	// ARM credential and options, for direct upload to managed disks.
	ARMCred    azcore.TokenCredential
	ARMOptions *arm.ClientOptions
}

// UploadToDisk creates diskID for direct upload and uploads source into it.
func (u *TransferUploader) UploadToDisk(ctx context.Context, source, diskID string, d DiskSpec, p progress.Func) (UploadResult, error) {
	if u.ARMCred == nil {
		return UploadResult{}, errors.New("internal error: no ARM credential for the disk upload")
	}
	o := transfer.DiskOptions{Location: d.Location, HyperVGeneration: d.HyperVGeneration, OSType: d.OSType, SecurityType: d.SecurityType}
	if u.A.Transfer != nil {
		o.Blob = *u.A.Transfer
	}
	tgt, err := transfer.NewDiskTarget(diskID, u.ARMCred, u.ARMOptions, o)
	if err != nil {
		return UploadResult{}, err
	}
	// A fresh disk every time (the plan deletes an unfinished one first),
	// so a checkpoint left by an earlier attempt is discarded.
	res, err := transfer.Upload(ctx, source, tgt, transfer.Options{Progress: p, Workers: u.A.Workers, Overwrite: true,
		Checkpoint: source + ".disk" + transfer.CheckpointSuffix})
	if err != nil {
		return UploadResult{}, err
	}
	return uploadResult(res), nil
}

// UploadToBlob uploads source to blobURL, resuming an interrupted upload of
// the same source to the same blob (checkpoint next to the source).
func (u *TransferUploader) UploadToBlob(ctx context.Context, source, blobURL string, p progress.Func) (UploadResult, error) {
	cred := transfer.BlobCredential{Token: u.A.Token}
	if u.A.AccountKey != "" {
		cred = transfer.BlobCredential{AccountName: u.A.account(blobURL), AccountKey: u.A.AccountKey}
	}
	var cfg transfer.ClientConfig
	if u.A.Transfer != nil {
		cfg = *u.A.Transfer
	}
	tgt, err := transfer.NewBlobTarget(blobURL, cred, cfg)
	if err != nil {
		return UploadResult{}, err
	}
	// No whole-blob MD5: it costs O(virtual size). Every Put Page is
	// CRC64-checked by the service (res.Integrity says so), and the blob's
	// fingerprint is its ETag after the upload (blobprint.go).
	o := transfer.Options{Progress: p, Overwrite: true, Workers: u.A.Workers}
	if _, err := os.Stat(source + transfer.CheckpointSuffix); err == nil {
		ro := o
		ro.Overwrite, ro.Resume = false, true
		res, err := transfer.Upload(ctx, source, tgt, ro)
		if err == nil {
			return uploadResult(res), nil
		}
		if ctx.Err() != nil {
			return UploadResult{}, err
		}
		// the checkpoint is for another target or a changed source: start over
	}
	res, err := transfer.Upload(ctx, source, tgt, o)
	if err != nil {
		return UploadResult{}, err
	}
	return uploadResult(res), nil
}

func uploadResult(r *transfer.Result) UploadResult {
	out := UploadResult{Size: r.VirtualSize, Integrity: r.Integrity}
	if r.MD5 != "" {
		out.MD5, _ = decodeB64(r.MD5)
	}
	return out
}

func decodeB64(s string) ([]byte, error) { return base64.StdEncoding.DecodeString(s) }
