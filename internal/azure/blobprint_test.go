package azure

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
)

// TestBlobPrint: new versions are checked by the blob's ETag; versions
// made before the ETag was recorded are still checked by the Content-MD5
// in their TagBlobMD5; the size always.
func TestBlobPrint(t *testing.T) {
	md5a, md5b := []byte("0123456789abcdef"), []byte("fedcba9876543210")
	b64 := base64.StdEncoding.EncodeToString
	oldTags := map[string]*string{TagBlobMD5: to.Ptr(b64(md5a)), TagBlobSize: to.Ptr("1049088")}
	newTags := map[string]*string{TagBlobETag: to.Ptr(`"0x8DC1"`), TagBlobSize: to.Ptr("1049088")}
	for _, c := range []struct {
		name string
		tags map[string]*string
		now  BlobProps
		want string // substring of the difference; "" for none
	}{
		{"old version, same MD5", oldTags, BlobProps{MD5: md5a, ETag: `"0x8DC9"`, Size: 1049088}, ""},
		{"old version, other MD5", oldTags, BlobProps{MD5: md5b, Size: 1049088}, "its Content-MD5 is " + b64(md5b) + ", was " + b64(md5a)},
		{"old version, MD5 removed", oldTags, BlobProps{Size: 1049088}, "its Content-MD5 is none"},
		{"old version, other size", oldTags, BlobProps{MD5: md5a, Size: 2 << 20}, "its size is 2097152, was 1049088"},
		{"new version, same ETag", newTags, BlobProps{ETag: `"0x8DC1"`, Size: 1049088}, ""},
		{"new version, rewritten", newTags, BlobProps{ETag: `"0x8DC2"`, Size: 1049088, MD5: md5a}, `it was written since (ETag "0x8DC2" now, "0x8DC1" then)`},
	} {
		t.Run(c.name, func(t *testing.T) {
			want := printFromTags(c.tags)
			if want.empty() {
				t.Fatal("tags read as no fingerprint")
			}
			got := want.differs(&c.now, "")
			if (c.want == "") != (got == "") || !strings.Contains(got, c.want) {
				t.Fatalf("differs = %q, want %q", got, c.want)
			}
		})
	}
	if !printFromTags(nil).empty() {
		t.Fatal("no tags should be no fingerprint")
	}
	// tags written: no empty MD5 tag when none was computed
	tg := map[string]*string{}
	blobPrint{ETag: `"e"`, Size: 512}.setTags(tg)
	if _, ok := tg[TagBlobMD5]; ok || tag(tg, TagBlobETag) != `"e"` || tag(tg, TagBlobSize) != "512" {
		t.Fatalf("tags %v", tg)
	}
	for _, c := range []struct {
		p    blobPrint
		want string
	}{
		{blobPrint{ETag: `"e"`, Size: 512}, `etag:"e" size:512`},
		{blobPrint{Size: 512}, "md5: size:512"},
	} {
		if got := c.p.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.p, got, c.want)
		}
	}
	if got := (blobPrint{ETag: "e", MD5: md5a, Size: 1}).String(); got != "etag:e md5:"+b64(md5a)+" size:1" {
		t.Errorf("both: %q", got)
	}
}
