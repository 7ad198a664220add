// Package sbom makes the software bill of materials of an image version: a
// CycloneDX JSON document listing the packages of the image's baseline, named
// by package URL, with the image itself as the document's subject.
package sbom

import (
	"bytes"
	"crypto/sha1"
	"errors"
	"fmt"
	"sort"
	"strings"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"

	"imgpipe/internal/drift"
)

// MediaType is the media type of the documents this package writes.
const MediaType = "application/vnd.cyclonedx+json"

// SpecVersion is the CycloneDX version written.
const SpecVersion = cdx.SpecVersion1_6

// Subject is the image version a document describes.
type Subject struct {
	Image   string
	Version string
	// Digest is the artifact's digest, "sha256:<hex>".
	Digest string
	// Tool is the version of imgpipe that wrote the document.
	Tool string
}

// FromBaseline builds the SBOM of subject from the baseline captured in its
// image: one component per installed package, named by purl
// (pkg:deb/debian/NAME@VERSION?arch=...&distro=..., pkg:rpm/...).
func FromBaseline(b *drift.Baseline, s Subject) (*cdx.BOM, error) {
	if s.Image == "" || s.Version == "" {
		return nil, errors.New("sbom: a subject needs an image and a version")
	}
	bom := cdx.NewBOM()
	// The serial number follows from what the document describes, so the same
	// image version always gets the same document (reproducible builds).
	bom.SerialNumber = "urn:uuid:" + nameUUID(s.Image+"@"+s.Version+"\x00"+s.Digest)
	ts := ""
	if !b.CapturedAt.IsZero() {
		ts = b.CapturedAt.UTC().Format("2006-01-02T15:04:05Z")
	}
	subject := cdx.Component{
		BOMRef:  "image:" + s.Image + "@" + s.Version,
		Type:    cdx.ComponentTypeOS,
		Name:    s.Image,
		Version: s.Version,
	}
	if alg, hex, ok := strings.Cut(s.Digest, ":"); ok && alg == "sha256" {
		subject.Hashes = &[]cdx.Hash{{Algorithm: cdx.HashAlgoSHA256, Value: hex}}
	}
	var props []cdx.Property
	if b.OS != nil {
		props = append(props, cdx.Property{Name: "imgpipe:os:id", Value: b.OS.ID})
		if b.OS.VersionID != "" {
			props = append(props, cdx.Property{Name: "imgpipe:os:version_id", Value: b.OS.VersionID})
		}
		if b.OS.PrettyName != "" {
			subject.Description = b.OS.PrettyName
		}
	}
	if b.Identity != nil && b.Identity.BuildID != "" {
		props = append(props, cdx.Property{Name: "imgpipe:build_id", Value: b.Identity.BuildID})
	}
	if len(props) > 0 {
		subject.Properties = &props
	}
	bom.Metadata = &cdx.Metadata{
		Timestamp: ts,
		Component: &subject,
		Tools: &cdx.ToolsChoice{Components: &[]cdx.Component{{
			Type: cdx.ComponentTypeApplication, Name: "imgpipe", Version: s.Tool,
		}}},
	}
	comps := make([]cdx.Component, 0, len(b.Packages))
	refs := make([]string, 0, len(b.Packages))
	seen := map[string]bool{}
	for _, p := range b.Packages {
		purl, err := PackageURL(p, b.OS)
		if err != nil {
			return nil, err
		}
		if seen[purl] {
			continue // a package listed twice by its database is one component
		}
		seen[purl] = true
		c := cdx.Component{
			BOMRef:     purl,
			Type:       cdx.ComponentTypeLibrary,
			Name:       p.Name,
			Version:    p.Version,
			PackageURL: purl,
		}
		if p.Status != "" {
			c.Properties = &[]cdx.Property{{Name: "imgpipe:package:status", Value: p.Status}}
		}
		comps = append(comps, c)
		refs = append(refs, purl)
	}
	sort.Slice(comps, func(i, j int) bool { return comps[i].BOMRef < comps[j].BOMRef })
	sort.Strings(refs)
	bom.Components = &comps
	bom.Dependencies = &[]cdx.Dependency{{Ref: subject.BOMRef, Dependencies: &refs}}
	return bom, nil
}

// PackageURL names one package in purl form. The distribution namespace and
// qualifier come from the image's os-release (purl-spec PURL-TYPES: deb, rpm).
func PackageURL(p drift.Package, osr *drift.OSRelease) (string, error) {
	var typ string
	switch p.Manager {
	case "dpkg":
		typ = packageurl.TypeDebian
	case "rpm":
		typ = packageurl.TypeRPM
	default:
		return "", fmt.Errorf("sbom: package %s: unknown package manager %q", p.Name, p.Manager)
	}
	if p.Name == "" || p.Version == "" {
		return "", fmt.Errorf("sbom: a %s package without name or version (%q %q)", p.Manager, p.Name, p.Version)
	}
	ns := "linux"
	var q packageurl.Qualifiers
	if p.Arch != "" {
		q = append(q, packageurl.Qualifier{Key: "arch", Value: p.Arch})
	}
	version := p.Version
	if typ == packageurl.TypeRPM {
		// rpm: the epoch is a qualifier, not part of the version.
		if e, rest, ok := strings.Cut(version, ":"); ok && isDigits(e) {
			version = rest
			q = append(q, packageurl.Qualifier{Key: "epoch", Value: e})
		}
	}
	if osr != nil && osr.ID != "" {
		ns = osr.ID
		d := osr.ID
		if osr.VersionID != "" {
			d += "-" + osr.VersionID
		}
		q = append(q, packageurl.Qualifier{Key: "distro", Value: d})
	}
	sort.Slice(q, func(i, j int) bool { return q[i].Key < q[j].Key })
	return packageurl.NewPackageURL(typ, ns, p.Name, version, q, "").ToString(), nil
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// nameUUID is an RFC 4122 name-based (version 5, SHA-1) UUID of name in a
// namespace of imgpipe's own.
func nameUUID(name string) string {
	ns := [16]byte{0x6b, 0x1f, 0x3c, 0x2e, 0x9a, 0x41, 0x4d, 0x0b, 0x8e, 0x5c, 0x1d, 0x7a, 0x62, 0x90, 0x33, 0x1c}
	h := sha1.New()
	h.Write(ns[:])
	h.Write([]byte(name))
	u := h.Sum(nil)[:16]
	u[6] = (u[6] & 0x0f) | 0x50
	u[8] = (u[8] & 0x3f) | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Encode writes bom as CycloneDX JSON.
func Encode(bom *cdx.BOM) ([]byte, error) {
	var buf bytes.Buffer
	enc := cdx.NewBOMEncoder(&buf, cdx.BOMFileFormatJSON).SetPretty(true)
	if err := enc.EncodeVersion(bom, SpecVersion); err != nil {
		return nil, fmt.Errorf("sbom: encode: %w", err)
	}
	return buf.Bytes(), nil
}

// maxDocument bounds what Decode accepts: an SBOM of 100k packages is ~40 MB.
const maxDocument = 64 << 20

// Decode reads a CycloneDX JSON document.
func Decode(data []byte) (*cdx.BOM, error) {
	if len(data) > maxDocument {
		return nil, fmt.Errorf("sbom: document is %d bytes, more than the %d accepted", len(data), maxDocument)
	}
	var bom cdx.BOM
	if err := cdx.NewBOMDecoder(bytes.NewReader(data), cdx.BOMFileFormatJSON).Decode(&bom); err != nil {
		return nil, fmt.Errorf("sbom: not a CycloneDX JSON document: %w", err)
	}
	if bom.BOMFormat != cdx.BOMFormat {
		return nil, fmt.Errorf("sbom: bomFormat is %q, not %q", bom.BOMFormat, cdx.BOMFormat)
	}
	return &bom, nil
}
