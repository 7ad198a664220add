package sbom

import (
	"sort"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
)

// Package is one package of a document, as a diff names it.
type Package struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	PURL    string `json:"purl"`
}

// Change is a package whose version differs between two documents.
type Change struct {
	Name string `json:"name"`
	From string `json:"from"`
	To   string `json:"to"`
	// FromPURL and ToPURL are the package URLs on either side.
	FromPURL string `json:"from_purl"`
	ToPURL   string `json:"to_purl"`
}

// Diff is what changed in the packages from one document to another.
type Diff struct {
	Added   []Package `json:"added"`
	Removed []Package `json:"removed"`
	Changed []Change  `json:"changed"`
}

// Empty says the two documents list the same packages.
func (d Diff) Empty() bool { return len(d.Added)+len(d.Removed)+len(d.Changed) == 0 }

// Compare diffs the packages of a and b. A package is the same package on
// both sides when its purl without version (type, namespace, name, arch)
// matches; the distro qualifier is ignored, so a distribution upgrade shows
// as changed versions, not as every package removed and added.
func Compare(a, b *cdx.BOM) Diff {
	as, bs := packages(a), packages(b)
	var d Diff
	for k, pa := range as {
		pb, ok := bs[k]
		switch {
		case !ok:
			d.Removed = append(d.Removed, pa)
		case pa.Version != pb.Version:
			d.Changed = append(d.Changed, Change{Name: pa.Name, From: pa.Version, To: pb.Version, FromPURL: pa.PURL, ToPURL: pb.PURL})
		}
	}
	for k, pb := range bs {
		if _, ok := as[k]; !ok {
			d.Added = append(d.Added, pb)
		}
	}
	sort.Slice(d.Added, func(i, j int) bool { return d.Added[i].PURL < d.Added[j].PURL })
	sort.Slice(d.Removed, func(i, j int) bool { return d.Removed[i].PURL < d.Removed[j].PURL })
	sort.Slice(d.Changed, func(i, j int) bool { return d.Changed[i].FromPURL < d.Changed[j].FromPURL })
	return d
}

func packages(b *cdx.BOM) map[string]Package {
	out := map[string]Package{}
	if b == nil || b.Components == nil {
		return out
	}
	for _, c := range *b.Components {
		key := c.PackageURL
		if p, err := packageurl.FromString(c.PackageURL); err == nil {
			key = p.Type + "/" + p.Namespace + "/" + p.Name + "?arch=" + p.Qualifiers.Map()["arch"]
		} else if key == "" {
			key = c.Name
		}
		out[key] = Package{Name: c.Name, Version: c.Version, PURL: c.PackageURL}
	}
	return out
}
