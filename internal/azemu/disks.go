package azemu

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/sas"
)

// Azure's direct-upload rules: the size includes the 512-byte VHD footer,
// the virtual size is a whole number of MiB, at least 20 MiB (so the
// smallest upload is 20 MiB + 512) and at most 32 TiB.
const (
	vhdFooter     = 512
	minUploadSize = 20<<20 + vhdFooter
	maxUploadSize = 32<<40 + vhdFooter
)

func (s *Server) storageConfigured() bool {
	return s.opts.Storage.BlobEndpoint != "" && s.opts.Storage.AccountName != "" && s.opts.Storage.AccountKey != ""
}

func (s *Server) sharedKey() (*blob.SharedKeyCredential, error) {
	return blob.NewSharedKeyCredential(s.opts.Storage.AccountName, s.opts.Storage.AccountKey)
}

// blobURLFor maps a blob URI from a request onto the configured blob
// service: URLs under the configured endpoint, and
// https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB (served by the same
// local service, so examples written for Azure replay).
func (s *Server) blobURLFor(u string) (string, error) {
	if !s.storageConfigured() {
		return "", errors.New("azemu has no blob service configured (start it with a blob endpoint, e.g. --azurite-blob)")
	}
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return "", fmt.Errorf("'%s' is not a blob URL", u)
	}
	ep, err := url.Parse(s.opts.Storage.BlobEndpoint)
	if err != nil {
		return "", err
	}
	path := pu.EscapedPath()
	switch {
	case strings.EqualFold(pu.Host, ep.Host):
		if !strings.HasPrefix(path, ep.EscapedPath()+"/") {
			return "", fmt.Errorf("blob URL '%s' is not under %s", u, s.opts.Storage.BlobEndpoint)
		}
		path = strings.TrimPrefix(path, ep.EscapedPath())
	case strings.HasSuffix(strings.ToLower(pu.Host), ".blob.core.windows.net"):
	default:
		return "", fmt.Errorf("blob URL '%s' is not served by the emulator's blob service %s", u, s.opts.Storage.BlobEndpoint)
	}
	if strings.Count(strings.Trim(path, "/"), "/") < 1 {
		return "", fmt.Errorf("blob URL '%s' names no container and blob", u)
	}
	return strings.TrimRight(s.opts.Storage.BlobEndpoint, "/") + path, nil
}

// blobToFingerprint returns the blob URI whose content a PUT copies (a
// managed image's blobUri, a version's VHD uri, or a source disk's page blob).
func (s *Server) blobToFingerprint(c *call, body map[string]any) string {
	props := obj(body, "properties")
	diskBlob := func(id string) string {
		s.mu.Lock()
		defer s.mu.Unlock()
		d := s.get(id)
		if d == nil || !strings.EqualFold(d.Type, "Microsoft.Compute/disks") || d.BlobName == "" {
			return ""
		}
		return s.diskBlobURL(d.BlobName)
	}
	switch c.typ {
	case "Microsoft.Compute/images":
		if u := str(props, "storageProfile", "osDisk", "blobUri"); u != "" {
			return u
		}
		return diskBlob(str(props, "storageProfile", "osDisk", "managedDisk", "id"))
	case "Microsoft.Compute/galleries/images/versions":
		if u := str(props, "storageProfile", "osDiskImage", "source", "uri"); u != "" {
			return u
		}
		if u := str(props, "storageProfile", "source", "uri"); u != "" {
			return u
		}
		if id := str(props, "storageProfile", "osDiskImage", "source", "id"); id != "" {
			return diskBlob(id)
		}
		return diskBlob(str(props, "storageProfile", "source", "id"))
	case "Microsoft.Compute/snapshots":
		if u := str(props, "creationData", "sourceUri"); u != "" {
			return u
		}
		return diskBlob(str(props, "creationData", "sourceResourceId"))
	}
	return ""
}

func (s *Server) diskBlobURL(name string) string {
	return strings.TrimRight(s.opts.Storage.BlobEndpoint, "/") + "/" + s.opts.Storage.Container + "/" + name
}

// fingerprintBlob reads a blob's properties and (up to MaxHashBytes) its
// content MD5.
func (s *Server) fingerprintBlob(ctx context.Context, u string) (*Fingerprint, *armError) {
	bad := func(format string, args ...any) *armError {
		return errf(http.StatusBadRequest, "InvalidParameter", format, args...).withTarget("blobUri")
	}
	bu, err := s.blobURLFor(u)
	if err != nil {
		return nil, bad("%v", err)
	}
	cred, err := s.sharedKey()
	if err != nil {
		return nil, bad("blob service credentials: %v", err)
	}
	bc, err := blob.NewClientWithSharedKeyCredential(bu, cred, nil)
	if err != nil {
		return nil, bad("%v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	props, err := bc.GetProperties(ctx, nil)
	if err != nil {
		if bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ContainerNotFound) {
			return nil, bad("The blob '%s' was not found. Upload it before creating a resource from it.", u)
		}
		return nil, errf(http.StatusInternalServerError, "InternalServerError", "Reading blob '%s' failed: %v", u, err)
	}
	fp := &Fingerprint{Source: u, Taken: now()}
	if props.ContentLength != nil {
		fp.Size = *props.ContentLength
	}
	if props.ETag != nil {
		fp.ETag = string(*props.ETag)
	}
	if len(props.ContentMD5) > 0 {
		fp.Stored = base64.StdEncoding.EncodeToString(props.ContentMD5)
	}
	if fp.Size <= s.opts.MaxHashBytes {
		sum, err := s.hashBlob(ctx, bu, cred, props.BlobType != nil && *props.BlobType == blob.BlobTypePageBlob, fp.Size, props.ETag)
		if err != nil {
			return nil, errf(http.StatusInternalServerError, "InternalServerError", "Reading blob '%s' failed: %v", u, err)
		}
		fp.MD5 = sum
	}
	return fp, nil
}

// hashBlob computes the MD5 of a blob's content. For a page blob only the
// written page ranges are downloaded; the gaps are hashed as zeros.
func (s *Server) hashBlob(ctx context.Context, bu string, cred *blob.SharedKeyCredential, page bool, size int64, etag *azcore.ETag) (string, error) {
	h := md5.New()
	ifMatch := &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag}}
	bc, err := blob.NewClientWithSharedKeyCredential(bu, cred, nil)
	if err != nil {
		return "", err
	}
	download := func(off, n int64) error {
		resp, err := bc.DownloadStream(ctx, &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off, Count: n}, AccessConditions: ifMatch})
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		got, err := io.Copy(h, resp.Body)
		if err == nil && got != n {
			err = fmt.Errorf("short read at %d: %d of %d bytes", off, got, n)
		}
		return err
	}
	if !page {
		if size == 0 {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err := download(0, size); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	pb, err := pageblob.NewClientWithSharedKeyCredential(bu, cred, nil)
	if err != nil {
		return "", err
	}
	zeros := make([]byte, 1<<20)
	writeZeros := func(n int64) {
		for n > 0 {
			k := min(n, int64(len(zeros)))
			h.Write(zeros[:k])
			n -= k
		}
	}
	var pos int64
	pager := pb.NewGetPageRangesPager(&pageblob.GetPageRangesOptions{AccessConditions: ifMatch})
	for pager.More() {
		pg, err := pager.NextPage(ctx)
		if err != nil {
			return "", err
		}
		for _, r := range pg.PageRange {
			if r.Start == nil || r.End == nil || *r.Start < pos || *r.End >= size {
				return "", fmt.Errorf("unexpected page range %v-%v", r.Start, r.End)
			}
			writeZeros(*r.Start - pos)
			for off := *r.Start; off <= *r.End; off += 4 << 20 {
				if err := download(off, min(4<<20, *r.End+1-off)); err != nil {
					return "", err
				}
			}
			pos = *r.End + 1
		}
	}
	writeZeros(size - pos)
	return hex.EncodeToString(h.Sum(nil)), nil
}

// sourceExists reports whether a version's source still exists. Caller
// holds s.mu; a VHD source is checked against the blob service.
func (s *Server) sourceExists(ctx context.Context, v *resource) bool {
	if v.SourceID == "" {
		return false
	}
	if strings.HasPrefix(v.SourceID, "/") {
		return s.get(v.SourceID) != nil
	}
	bu, err := s.blobURLFor(v.SourceID)
	if err != nil {
		return false
	}
	cred, err := s.sharedKey()
	if err != nil {
		return false
	}
	bc, err := blob.NewClientWithSharedKeyCredential(bu, cred, nil)
	if err != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, err = bc.GetProperties(ctx, nil)
	return err == nil
}

func (s *Server) deleteBlob(ctx context.Context, name string) {
	cred, err := s.sharedKey()
	if err != nil {
		return
	}
	bc, err := blob.NewClientWithSharedKeyCredential(s.diskBlobURL(name), cred, nil)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	_, _ = bc.Delete(ctx, nil)
}

// ---- disks ---------------------------------------------------------------------

func (s *Server) prepareDisk(c *call, res, existing *resource, props map[string]any) *armError {
	cd := ensure(props, "creationData")
	opt := str(cd, "createOption")
	if existing != nil {
		old := obj(existing.Body, "properties")
		if str(old, "creationData", "createOption") != opt {
			return errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'creationData.createOption' is not allowed.").withTarget("creationData.createOption")
		}
		for _, k := range []string{"diskState", "diskSizeBytes", "timeCreated", "uniqueId"} {
			if v, ok := old[k]; ok {
				props[k] = v
			}
		}
		return nil
	}
	if e := checkDiskProfile(props); e != nil {
		return e
	}
	props["timeCreated"] = ts(now())
	props["uniqueId"] = newID()
	switch opt {
	case "Upload":
		n, ok := num(cd["uploadSizeBytes"])
		if !ok {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'creationData.uploadSizeBytes' is missing (null).").withTarget("creationData.uploadSizeBytes")
		}
		if n < minUploadSize || n > maxUploadSize || (n-vhdFooter)%(1<<20) != 0 {
			return errf(http.StatusBadRequest, "InvalidParameter",
				"The value %d of 'creationData.uploadSizeBytes' is invalid: it must be the virtual size (a whole number of MiB, at least 20 MiB) plus the 512-byte VHD footer, for example %d.",
				n, int64(20<<20+vhdFooter)).withTarget("creationData.uploadSizeBytes")
		}
		props["diskState"] = "ReadyToUpload"
		props["diskSizeBytes"] = n - vhdFooter
		props["diskSizeGB"] = (n - vhdFooter + (1<<30 - 1)) >> 30
	case "Empty":
		gb, ok := num(props["diskSizeGB"])
		if !ok || gb <= 0 {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'diskSizeGB' is missing (null).").withTarget("diskSizeGB")
		}
		props["diskState"] = "Unattached"
		props["diskSizeBytes"] = gb << 30
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'creationData.createOption' is not supported by azemu: use Upload or Empty.", opt).withTarget("creationData.createOption")
	}
	return nil
}

// diskGrantAccess serves beginGetAccess: for a disk waiting for its upload it
// creates the page blob in the blob service and hands out a write SAS.
func (s *Server) diskGrantAccess(c *call) {
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	access := str(body, "access")
	dur, _ := num(body["durationInSeconds"])
	if access != "Read" && access != "Write" {
		c.fail(errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'access' is not allowed. Allowed values are 'Read' and 'Write'.", access).withTarget("access"))
		return
	}
	if dur <= 0 {
		c.fail(errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'durationInSeconds' is missing or not positive.").withTarget("durationInSeconds"))
		return
	}
	s.mu.Lock()
	s.tick()
	if !s.rgExists(c.sub, c.rg) {
		s.mu.Unlock()
		c.fail(rgNotFound(c.rg))
		return
	}
	d := s.get(c.id)
	if d == nil {
		s.mu.Unlock()
		c.fail(notFound(c.typ, c.rg, c.id))
		return
	}
	state := str(d.Body, "properties", "diskState")
	size, _ := num(obj(d.Body, "properties", "creationData")["uploadSizeBytes"])
	if d.PendingOp != "" {
		if op := s.st.Ops[d.PendingOp]; op != nil && !op.Applied {
			s.mu.Unlock()
			c.fail(errf(http.StatusConflict, "OperationNotAllowed", "Disk '%s' is busy with another operation; retry when it completes.", d.ID))
			return
		}
	}
	wantState := "ActiveSAS"
	switch {
	case access == "Write" && (state == "ReadyToUpload" || state == "ActiveUpload"):
		// Granting write access again while the upload is active renews the
		// SAS: "If your SAS expires during the upload, and you haven't called
		// revoke-access yet, you can get a new SAS to continue the upload
		// using grant-access, again."
		// (learn.microsoft.com/azure/virtual-machines/linux/disks-upload-vhd-to-managed-disk-cli)
		wantState = "ActiveUpload"
	case access == "Write":
		s.mu.Unlock()
		c.fail(errf(http.StatusConflict, "OperationNotAllowed", "Write access can only be granted to a disk in ReadyToUpload state; disk '%s' is %s.", d.ID, state))
		return
	case state != "Unattached":
		s.mu.Unlock()
		c.fail(errf(http.StatusConflict, "OperationNotAllowed", "Read access cannot be granted to disk '%s' in state %s.", d.ID, state))
		return
	}
	if !s.storageConfigured() {
		s.mu.Unlock()
		c.fail(errf(http.StatusConflict, "OperationNotAllowed", "azemu has no blob service configured, so it cannot give SAS access to disks (start it with a blob endpoint)."))
		return
	}
	blobName := d.BlobName
	if blobName == "" {
		blobName = strings.ToLower(c.sub+"-"+c.rg+"-"+c.name) + "-" + newID()[:8] + ".vhd"
	}
	s.mu.Unlock()

	if wantState == "ActiveUpload" && state == "ReadyToUpload" {
		if err := s.createPageBlob(c.r.Context(), blobName, size); err != nil {
			c.fail(errf(http.StatusInternalServerError, "InternalServerError", "Creating the upload blob failed: %v", err))
			return
		}
	}
	perms := sas.BlobPermissions{Read: true}
	if wantState == "ActiveUpload" {
		perms = sas.BlobPermissions{Read: true, Write: true}
	}
	sasURL, err := s.blobSAS(blobName, perms, time.Duration(dur)*time.Second)
	if err != nil {
		c.fail(errf(http.StatusInternalServerError, "InternalServerError", "Signing the SAS failed: %v", err))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d = s.get(c.id)
	if d == nil {
		c.fail(notFound(c.typ, c.rg, c.id))
		return
	}
	d.BlobName = blobName
	ensure(d.Body, "properties")["diskState"] = wantState
	op := s.startOp(c.r, c.sub, str(d.Body, "location"), d.ID, "grantAccess", s.opts.LRODelay)
	op.Result = map[string]any{"accessSAS": sasURL}
	_ = s.saveLocked()
	s.setLROHeaders(c.w, op, true)
	c.w.WriteHeader(http.StatusAccepted)
}

func (s *Server) diskRevokeAccess(c *call) {
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.resolveLocked(c)
	if !ok {
		return
	}
	if d == nil {
		c.fail(notFound(c.typ, c.rg, c.id))
		return
	}
	op := s.startOp(c.r, c.sub, str(d.Body, "location"), d.ID, "revokeAccess", s.opts.LRODelay)
	_ = s.saveLocked()
	s.setLROHeaders(c.w, op, true)
	c.w.WriteHeader(http.StatusAccepted)
}

func (s *Server) createPageBlob(ctx context.Context, name string, size int64) error {
	cred, err := s.sharedKey()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	cc, err := container.NewClientWithSharedKeyCredential(strings.TrimRight(s.opts.Storage.BlobEndpoint, "/")+"/"+s.opts.Storage.Container, cred, nil)
	if err != nil {
		return err
	}
	if _, err := cc.Create(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.ContainerAlreadyExists) {
		return fmt.Errorf("create container %s: %w", s.opts.Storage.Container, err)
	}
	pb, err := pageblob.NewClientWithSharedKeyCredential(s.diskBlobURL(name), cred, nil)
	if err != nil {
		return err
	}
	_, err = pb.Create(ctx, size, nil)
	return err
}

func (s *Server) blobSAS(name string, perms sas.BlobPermissions, d time.Duration) (string, error) {
	cred, err := s.sharedKey()
	if err != nil {
		return "", err
	}
	bc, err := blob.NewClientWithSharedKeyCredential(s.diskBlobURL(name), cred, nil)
	if err != nil {
		return "", err
	}
	return bc.GetSASURL(perms, time.Now().Add(d), &blob.GetSASURLOptions{StartTime: ptr(time.Now().Add(-5 * time.Minute))})
}

func ptr[T any](v T) *T { return &v }

// checkDiskProfile validates the OS properties of a disk or snapshot:
// osType and hyperVGeneration values, and a securityProfile whose security
// type needs generation 2 ("Trusted launch supports only Generation 2
// VMs", learn.microsoft.com/azure/virtual-machines/trusted-launch; the disk
// security types of the spec's DiskSecurityTypes are all confidential or
// trusted launch types).
func checkDiskProfile(props map[string]any) *armError {
	switch str(props, "osType") {
	case "", "Linux", "Windows":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'osType' is not allowed. Allowed values are 'Windows' and 'Linux'.", str(props, "osType")).withTarget("osType")
	}
	gen := str(props, "hyperVGeneration")
	switch gen {
	case "", "V1", "V2":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'hyperVGeneration' is not allowed. Allowed values are 'V1' and 'V2'.", gen).withTarget("hyperVGeneration")
	}
	if st := str(props, "securityProfile", "securityType"); st != "" {
		if gen != "V2" {
			return errf(http.StatusBadRequest, "InvalidParameter", "Security type '%s' of a disk requires hyperVGeneration V2 (generation 2); this disk is %s.", st, orV1(gen)).withTarget("securityProfile.securityType")
		}
		if str(props, "osType") == "" {
			return errf(http.StatusBadRequest, "InvalidParameter", "Security type '%s' applies to OS disks only: set osType.", st).withTarget("osType")
		}
	}
	return nil
}

func orV1(gen string) string {
	if gen == "" {
		return "V1 (hyperVGeneration not set)"
	}
	return gen
}

// prepareSnapshot records a snapshot of a disk (createOption Copy, or
// CopyStart) or of a blob (Import, with storageAccountId). The snapshot is a
// copy: its content is fingerprinted when it is taken.
func (s *Server) prepareSnapshot(c *call, res, existing *resource, props map[string]any, fp *Fingerprint, fpErr *armError) *armError {
	cd := ensure(props, "creationData")
	opt := str(cd, "createOption")
	if existing != nil {
		old := obj(existing.Body, "properties")
		if str(old, "creationData", "createOption") != opt && opt != "" {
			return errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'creationData.createOption' is not allowed.").withTarget("creationData.createOption")
		}
		props["creationData"] = deepCopy(obj(old, "creationData"))
		for _, k := range []string{"diskSizeGB", "diskSizeBytes", "timeCreated", "uniqueId", "hyperVGeneration", "osType", "diskState"} {
			if v, ok := old[k]; ok {
				props[k] = v
			}
		}
		return nil
	}
	switch opt {
	case "Copy", "CopyStart":
		srcID := str(cd, "sourceResourceId")
		src := s.get(srcID)
		if srcID == "" || src == nil || !isDiskOrSnapshot(src) {
			return errf(http.StatusNotFound, "NotFound", "The source resource '%s' of the snapshot was not found.", srcID).withTarget("creationData.sourceResourceId")
		}
		if st := str(src.Body, "properties", "diskState"); st == "ActiveUpload" || st == "ReadyToUpload" {
			return errf(http.StatusConflict, "OperationNotAllowed", "Disk '%s' is in state %s; a snapshot needs a finished upload (endGetAccess).", src.ID, st).withTarget("creationData.sourceResourceId")
		}
		if normRegion(str(src.Body, "location")) != c.location {
			return errf(http.StatusBadRequest, "BadRequest", "The source resource %s does not belong to the same region as the snapshot.", src.ID).withTarget("creationData.sourceResourceId")
		}
		sp := obj(src.Body, "properties")
		for _, k := range []string{"diskSizeGB", "diskSizeBytes", "hyperVGeneration", "osType", "securityProfile"} {
			if v, ok := sp[k]; ok {
				setDefault(props, k, deepCopy(v))
			}
		}
		if strings.EqualFold(src.Type, "Microsoft.Compute/snapshots") {
			if src.Fingerprint != nil {
				cp := *src.Fingerprint
				res.Fingerprint = &cp
			}
		} else {
			if fpErr != nil {
				return fpErr
			}
			if fp == nil && src.Fingerprint != nil {
				cp := *src.Fingerprint
				fp = &cp
			}
			res.Fingerprint = fp
		}
	case "Import":
		u := str(cd, "sourceUri")
		if u == "" {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'creationData.sourceUri' is missing (null).").withTarget("creationData.sourceUri")
		}
		if str(cd, "storageAccountId") == "" {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'creationData.storageAccountId' is missing (null).").withTarget("creationData.storageAccountId")
		}
		if e := s.imageBlobAccount(c, u); e != nil {
			return e
		}
		if fpErr != nil {
			return fpErr
		}
		res.Fingerprint = fp
		if fp != nil {
			setDefault(props, "diskSizeGB", (fp.Size+(1<<30-1))>>30)
		}
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'creationData.createOption' is not supported by azemu for snapshots: use Copy or Import.", opt).withTarget("creationData.createOption")
	}
	if e := checkDiskProfile(props); e != nil {
		return e
	}
	props["timeCreated"] = ts(now())
	props["uniqueId"] = newID()
	props["diskState"] = "Unattached"
	setDefault(props, "incremental", false)
	return nil
}
