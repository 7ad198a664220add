package azemu

import (
	"fmt"
	"net/http"
	"strings"
)

// What gallery image versions, managed images and snapshots may be made
// from. Sources:
//   - learn.microsoft.com/azure/virtual-machines/troubleshooting-shared-images
//     ("Issues with creating or updating image versions"): one source kind
//     only, directly under storageProfile or per disk; OS and data disk
//     sources must be managed disks or snapshots; LUNs and source ids
//     unique; the OS type must match the definition's; a different
//     hypervisor generation fails the operation with Conflict "The resource
//     with id '<id>' has a different Hypervisor generation ['V2'] than the
//     parent gallery image Hypervisor generation ['V1']" (a failed
//     long-running operation: MicrosoftDocs/azure-docs#118774).
//   - A disk or snapshot created without hyperVGeneration is V1 (spec:
//     DiskProperties.hyperVGeneration "Applicable to OS disks only", V1 is
//     what VMs boot it as).
//   - Trusted launch versions cannot come from a managed image ("Trusted
//     launch ... doesn't support ... Managed Image" —
//     learn.microsoft.com/azure/virtual-machines/trusted-launch-faq, "Can I
//     create a Trusted launch image from a managed image?": no).
//   - VHD sources name their storage account (storageAccountId, spec
//     GalleryDiskImageSource) and the caller needs its listKeys permission
//     (Microsoft.Storage/storageAccounts/listKeys/action,
//     learn.microsoft.com/azure/virtual-machines/image-version#create-an-image-version-from-a-vhd).
//   - A managed image (or a disk or snapshot import) from a blob needs the
//     blob's account in the image's region and subscription: Azure answers
//     "The source blob <uri> does not belong to the same region as the disk"
//     (BadRequest; microsoft/defendtheflag#1) and images are regional,
//     subscription-scoped resources made from blobs of the same region
//     (learn.microsoft.com/azure/virtual-machines/capture-image-resource).

// imageBlobAccount checks that a blob used by an image, disk or snapshot
// lives in a storage account of the request's subscription and region.
// Caller holds s.mu.
func (s *Server) imageBlobAccount(c *call, blob string) *armError {
	name := s.accountOfBlob(blob)
	acct := s.storageAccountNamed(name)
	kind := strings.ToLower(typeTail(c.typ))
	kind = strings.TrimSuffix(kind[strings.LastIndex(kind, "/")+1:], "s")
	if acct == nil {
		return errf(http.StatusBadRequest, "InvalidParameter",
			"The storage account '%s' of source blob %s was not found. Create the blob in a storage account of this subscription and region.", name, blob).withTarget("blobUri")
	}
	if !strings.EqualFold(subOf(acct.ID), c.sub) {
		return errf(http.StatusBadRequest, "BadRequest",
			"The source blob %s does not belong to the same subscription as the %s: storage account %s is in subscription %s.", blob, kind, acct.ID, subOf(acct.ID)).withTarget("blobUri")
	}
	if normRegion(str(acct.Body, "location")) != c.location {
		return errf(http.StatusBadRequest, "BadRequest",
			"The source blob %s does not belong to the same region as the %s: storage account %s is in %s, the %s in %s.", blob, kind, str(acct.Body, "name"), str(acct.Body, "location"), kind, c.location).withTarget("blobUri")
	}
	return nil
}

// vhdAccount checks a VHD source of a version: its storageAccountId exists,
// holds the blob, and the caller may list its keys. Caller holds s.mu.
func (s *Server) vhdAccount(c *call, uri, accountID, target string) *armError {
	if accountID == "" {
		return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'storageAccountId' is missing (null).").withTarget(target + ".storageAccountId")
	}
	acct := s.get(accountID)
	if acct == nil || !strings.EqualFold(acct.Type, storageAccountType) {
		return errf(http.StatusBadRequest, "InvalidParameter", "The storage account '%s' given as storageAccountId was not found.", accountID).withTarget(target + ".storageAccountId")
	}
	if name := s.accountOfBlob(uri); !strings.EqualFold(name, str(acct.Body, "name")) {
		return errf(http.StatusBadRequest, "InvalidParameter", "The blob '%s' is not in storage account '%s' (storageAccountId).", uri, acct.ID).withTarget(target + ".uri")
	}
	if !s.canListKeys(c.r, c.sub, acct) {
		return s.listKeysDenied(c, acct.ID, true)
	}
	return nil
}

func isDiskOrSnapshot(r *resource) bool {
	t := strings.ToLower(r.Type)
	return t == "microsoft.compute/disks" || t == "microsoft.compute/snapshots"
}

// diskSource checks a disk or snapshot used as the OS source of a version and
// returns its generation and OS type. Caller holds s.mu.
func (s *Server) diskSource(c *call, res, src *resource, fp *Fingerprint, fpErr *armError, target string) (gen, osType string, e *armError) {
	if st := str(src.Body, "properties", "diskState"); st == "ActiveUpload" || st == "ReadyToUpload" {
		return "", "", errf(http.StatusConflict, "OperationNotAllowed", "The source disk '%s' is in state %s; finish the upload (endGetAccess) first.", src.ID, st).withTarget(target)
	}
	if normRegion(str(src.Body, "location")) != c.location {
		return "", "", errf(http.StatusBadRequest, "InvalidParameter", "Source %s not found. Make sure that the source exists and is in the same region as the gallery image version being created.", src.ID).withTarget(target)
	}
	if strings.EqualFold(src.Type, "Microsoft.Compute/snapshots") {
		if src.Fingerprint != nil {
			cp := *src.Fingerprint
			res.Fingerprint = &cp
		}
	} else {
		if fpErr != nil {
			return "", "", fpErr
		}
		res.Fingerprint = fp
	}
	gen = str(src.Body, "properties", "hyperVGeneration")
	if gen == "" {
		gen = "V1"
	}
	return gen, str(src.Body, "properties", "osType"), nil
}

// versionSource validates and records the source of a new version.
// Caller holds s.mu.
func (s *Server) versionSource(c *call, res, def *resource, stp map[string]any, fp *Fingerprint, fpErr *armError) *armError {
	srcID := str(stp, "source", "id")
	osID := str(stp, "osDiskImage", "source", "id")
	vhd := str(stp, "osDiskImage", "source", "uri")
	vhdAcct := str(stp, "osDiskImage", "source", "storageAccountId")
	if vhd == "" {
		vhd, vhdAcct = str(stp, "source", "uri"), str(stp, "source", "storageAccountId")
	}
	dds, _ := stp["dataDiskImages"].([]any)
	perDisk := osID != "" || str(stp, "osDiskImage", "source", "uri") != "" || len(dds) > 0
	if srcID != "" && perDisk {
		return errf(http.StatusBadRequest, "InvalidParameter",
			"The source of a gallery artifact version can only be specified either directly under storageProfile or within individual OS or data disks. One and only one source type (user image, snapshot, disk, virtual machine) can be provided.").withTarget("storageProfile")
	}
	defProps := obj(def.Body, "properties")
	defGen, defOS := str(defProps, "hyperVGeneration"), str(defProps, "osType")
	sec := strings.ToLower(securityType(defProps))
	var srcGen, srcOS, genOf string
	switch {
	case srcID != "":
		src := s.get(srcID)
		if src == nil {
			return errf(http.StatusNotFound, "NotFound", "Source not found: %s. Please make sure the source exists.", srcID).withTarget("storageProfile.source.id")
		}
		res.SourceID, res.SourceCreated, genOf = src.ID, src.Created, src.ID
		switch {
		case strings.EqualFold(src.Type, "Microsoft.Compute/images"):
			if sec == "trustedlaunch" || strings.HasPrefix(sec, "confidentialvm") {
				return errf(http.StatusBadRequest, "InvalidParameter",
					"A gallery image version of a gallery image with security type %s cannot be created from the managed image '%s': managed images are not supported for that security type. Use a disk, snapshot or VHD source.", securityType(defProps), src.ID).withTarget("storageProfile.source.id")
			}
			srcGen = str(src.Body, "properties", "hyperVGeneration")
			srcOS = str(src.Body, "properties", "storageProfile", "osDisk", "osType")
			if src.Fingerprint != nil {
				cp := *src.Fingerprint
				res.Fingerprint = &cp
			}
			if os := obj(src.Body, "properties", "storageProfile", "osDisk"); os != nil {
				odi := ensure(stp, "osDiskImage")
				setDefault(odi, "hostCaching", str(os, "caching"))
				setDefault(odi, "sizeInGB", int64(1))
				if fp != nil && fp.Size > 0 {
					odi["sizeInGB"] = (fp.Size + (1<<30 - 1)) >> 30
				} else if src.Fingerprint != nil {
					odi["sizeInGB"] = (src.Fingerprint.Size + (1<<30 - 1)) >> 30
				}
			}
		case isDiskOrSnapshot(src):
			var e *armError
			if srcGen, srcOS, e = s.diskSource(c, res, src, fp, fpErr, "storageProfile.source.id"); e != nil {
				return e
			}
			s.diskImageSize(ensure(stp, "osDiskImage"), src)
		default:
			return errf(http.StatusBadRequest, "InvalidParameter", "The source id %s must be either a managed image, virtual machine or another gallery image version.", srcID).withTarget("storageProfile.source.id")
		}
	case osID != "":
		src := s.get(osID)
		if src == nil {
			return errf(http.StatusNotFound, "NotFound", "Source not found: %s. Please make sure the source exists.", osID).withTarget("storageProfile.osDiskImage.source.id")
		}
		if !isDiskOrSnapshot(src) {
			return errf(http.StatusBadRequest, "InvalidParameter", "The source id %s must be either a managed disk or a snapshot.", osID).withTarget("storageProfile.osDiskImage.source.id")
		}
		res.SourceID, res.SourceCreated, genOf = src.ID, src.Created, src.ID
		var e *armError
		if srcGen, srcOS, e = s.diskSource(c, res, src, fp, fpErr, "storageProfile.osDiskImage.source.id"); e != nil {
			return e
		}
		s.diskImageSize(ensure(stp, "osDiskImage"), src)
	case vhd != "":
		if e := s.vhdAccount(c, vhd, vhdAcct, "storageProfile.osDiskImage.source"); e != nil {
			return e
		}
		if fpErr != nil {
			return fpErr
		}
		res.Fingerprint = fp
		res.SourceID = vhd
		if fp != nil {
			setDefault(ensure(stp, "osDiskImage"), "sizeInGB", (fp.Size+(1<<30-1))>>30)
		}
		// A VHD carries no generation: the definition's is trusted.
		srcGen = defGen
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'storageProfile.source' is missing (null).").withTarget("storageProfile.source")
	}
	if odi := obj(stp, "osDiskImage"); odi != nil {
		setDefault(odi, "hostCaching", "ReadOnly")
	}
	if e := s.dataDiskImages(c, dds, res.SourceID); e != nil {
		return e
	}
	if srcOS != "" && defOS != "" && !strings.EqualFold(srcOS, defOS) {
		return errf(http.StatusConflict, "Conflict", "The resource with id '%s' has OS type ['%s'] which does not match the parent gallery image OS type ['%s'].", genOf, srcOS, defOS)
	}
	if srcGen != defGen {
		e := errf(http.StatusConflict, "Conflict", "The resource with id '%s' has a different Hypervisor generation ['%s'] than the parent gallery image Hypervisor generation ['%s'].", genOf, srcGen, defGen)
		c.lroError = e // accepted, then the operation fails
	}
	return nil
}

// diskImageSize fills sizeInGB of a disk image from its source disk or snapshot.
func (s *Server) diskImageSize(img map[string]any, src *resource) {
	if gb, ok := num(obj(src.Body, "properties")["diskSizeGB"]); ok {
		setDefault(img, "sizeInGB", gb)
	}
}

// dataDiskImages validates the data disks of a new version. Caller holds s.mu.
func (s *Server) dataDiskImages(c *call, dds []any, osSource string) *armError {
	luns, ids := map[int64]bool{}, map[string]bool{key(osSource): true}
	for i, d := range dds {
		dm, ok := d.(map[string]any)
		target := fmt.Sprintf("storageProfile.dataDiskImages[%d]", i)
		if !ok {
			return errf(http.StatusBadRequest, "InvalidParameter", "Each data disk image must be an object.").withTarget(target)
		}
		lun, ok := num(dm["lun"])
		if !ok || lun < 0 {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'lun' is missing (null).").withTarget(target + ".lun")
		}
		if luns[lun] {
			return errf(http.StatusBadRequest, "InvalidParameter", "Duplicated lun numbers have been detected in the input disks. Lun number must be unique for each disk.").withTarget(target + ".lun")
		}
		luns[lun] = true
		id, uri := str(dm, "source", "id"), str(dm, "source", "uri")
		switch {
		case id != "":
			if ids[key(id)] {
				return errf(http.StatusBadRequest, "InvalidParameter", "Duplicated source ids have been detected in the input disks. Source id must be unique for each disk.").withTarget(target + ".source.id")
			}
			ids[key(id)] = true
			src := s.get(id)
			if src == nil {
				return errf(http.StatusNotFound, "NotFound", "Source not found: %s. Please make sure the source exists.", id).withTarget(target + ".source.id")
			}
			if !isDiskOrSnapshot(src) {
				return errf(http.StatusBadRequest, "InvalidParameter", "The source id %s must be either a managed disk or a snapshot.", id).withTarget(target + ".source.id")
			}
			s.diskImageSize(dm, src)
		case uri != "":
			if ids[key(uri)] {
				return errf(http.StatusBadRequest, "InvalidParameter", "OSDiskImage and DataDiskImage cannot point to the same blob %s.", uri).withTarget(target + ".source.uri")
			}
			ids[key(uri)] = true
			if e := s.vhdAccount(c, uri, str(dm, "source", "storageAccountId"), target+".source"); e != nil {
				return e
			}
			setDefault(dm, "sizeInGB", int64(1))
		default:
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'source' of a data disk image is missing (null).").withTarget(target + ".source")
		}
		setDefault(dm, "hostCaching", "None")
	}
	return nil
}
