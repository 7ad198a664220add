package azure

import (
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
)

// TagBlobETag records the ETag of the page blob right after imgpipe wrote
// it and marked it with its source digest (metadata imgpipe_source_digest).
// Any later write to the blob — a new Put Blob under the same name, a Put
// Page, a metadata change — gives it a new ETag ("The ETag ... is updated on
// every write operation to the blob", Get Blob Properties, Storage REST API),
// so comparing it detects a replaced blob at the cost of one HEAD request.
//
// It replaces the whole-blob Content-MD5 (TagBlobMD5) as the blob's
// fingerprint: that MD5 had to be computed over the whole virtual size,
// zeros included, at every upload. Versions made before keep TagBlobMD5 and
// are still checked against the blob's Content-MD5.
const TagBlobETag = "imgpipe.blob.etag"

// blobPrint is what identifies the bytes of a page blob imgpipe uploaded.
type blobPrint struct {
	ETag string // after the upload and the metadata (new versions)
	MD5  []byte // whole-blob Content-MD5 (older versions; or upload --md5)
	Size int64
}

// printOf is the fingerprint of the blob as it is now.
func printOf(b *BlobProps) blobPrint {
	return blobPrint{ETag: b.ETag, MD5: b.MD5, Size: b.Size}
}

// printFromTags reads the fingerprint recorded in a version's (or managed
// image's) tags.
func printFromTags(tags map[string]*string) blobPrint {
	p := blobPrint{ETag: tag(tags, TagBlobETag)}
	p.MD5, _ = base64.StdEncoding.DecodeString(tag(tags, TagBlobMD5))
	p.Size, _ = strconv.ParseInt(tag(tags, TagBlobSize), 10, 64)
	return p
}

// empty says nothing was recorded.
func (p blobPrint) empty() bool { return p.ETag == "" && len(p.MD5) == 0 && p.Size == 0 }

// setTags writes the fingerprint into t (only what is known: no empty
// MD5 tag when the upload did not compute one).
func (p blobPrint) setTags(t map[string]*string) {
	if p.ETag != "" {
		t[TagBlobETag] = to.Ptr(p.ETag)
	}
	if len(p.MD5) > 0 {
		t[TagBlobMD5] = to.Ptr(base64.StdEncoding.EncodeToString(p.MD5))
	}
	t[TagBlobSize] = to.Ptr(strconv.FormatInt(p.Size, 10))
}

// record is the fingerprint as a run step records it.
func (p blobPrint) record(m map[string]string) {
	if p.ETag != "" {
		m["blob.etag"] = p.ETag
	}
	if len(p.MD5) > 0 {
		m["blob.md5"] = base64.StdEncoding.EncodeToString(p.MD5)
	}
	m["blob.size"] = strconv.FormatInt(p.Size, 10)
}

// String is the copy's fingerprint in the catalog: "etag:E size:N",
// "md5:B64 size:N", or both.
func (p blobPrint) String() string {
	var parts []string
	if p.ETag != "" {
		parts = append(parts, "etag:"+p.ETag)
	}
	if len(p.MD5) > 0 || p.ETag == "" {
		parts = append(parts, "md5:"+base64.StdEncoding.EncodeToString(p.MD5))
	}
	return strings.Join(append(parts, fmt.Sprintf("size:%d", p.Size)), " ")
}

// differs compares the recorded fingerprint (want) with the blob now and
// says how it differs ("" when it does not). The ETag decides when it was
// recorded; otherwise the Content-MD5 (versions made before the ETag was
// recorded); the size always.
func (want blobPrint) differs(now *BlobProps, digestNow string) string {
	var diffs []string
	switch {
	case want.ETag != "":
		if now.ETag != want.ETag {
			d := fmt.Sprintf("it was written since (ETag %s now, %s then)", orNone(now.ETag), want.ETag)
			if digestNow == "" {
				d += " and carries no imgpipe source digest"
			} else {
				d += ", marked as holding " + digestNow
			}
			diffs = append(diffs, d)
		}
	case len(want.MD5) > 0:
		if got, w := base64.StdEncoding.EncodeToString(now.MD5), base64.StdEncoding.EncodeToString(want.MD5); got != w {
			diffs = append(diffs, fmt.Sprintf("its Content-MD5 is %s, was %s", orNone(got), w))
		}
	}
	if want.Size != 0 && now.Size != want.Size {
		diffs = append(diffs, fmt.Sprintf("its size is %d, was %d", now.Size, want.Size))
	}
	return strings.Join(diffs, "; ")
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// print is the fingerprint of the blob (or disk) this run made or kept.
func (ap *applied) print() blobPrint {
	return blobPrint{ETag: ap.blobETag, MD5: ap.blobMD5, Size: ap.blobSize}
}
