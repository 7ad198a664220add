package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

type validator struct {
	diags hcl.Diagnostics
}

func (v *validator) errf(r hcl.Range, summary, format string, a ...any) {
	rr := r
	v.diags = append(v.diags, &hcl.Diagnostic{
		Severity: hcl.DiagError,
		Summary:  summary,
		Detail:   fmt.Sprintf(format, a...),
		Subject:  &rr,
	})
}

// attrRange is the range of attribute name's value in body, or def when absent.
// imageOf resolves the image a block (an azure destination, a test, a
// rebuild or rollout policy) refers to: the one named, else the file's only
// image; "" after an error when it names none of several or an unknown one.
func (v *validator) imageOf(f *File, p *string, body hcl.Body, def hcl.Range, block string) string {
	if p == nil {
		if len(f.Images) == 1 {
			return f.Images[0].Name
		}
		if len(f.Images) > 1 {
			v.errf(def, "image required", "%s: the file declares several images; say which one with image = \"NAME\"", block)
		}
		return ""
	}
	if f.image(*p) == nil {
		v.errf(attrRange(body, "image", def), "unknown image", "%s refers to image %q, which no image block declares", block, *p)
	}
	return *p
}

func attrRange(body hcl.Body, name string, def hcl.Range) hcl.Range {
	if b, ok := body.(*hclsyntax.Body); ok {
		if a, ok := b.Attributes[name]; ok {
			return a.Expr.Range()
		}
	}
	return def
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// oneOf canonicalises value against allowed (case-insensitive); "" stays "".
func (v *validator) oneOf(body hcl.Body, def hcl.Range, attr, value string, allowed ...string) string {
	if value == "" {
		return ""
	}
	for _, a := range allowed {
		if strings.EqualFold(a, value) {
			return a
		}
	}
	v.errf(attrRange(body, attr, def), "invalid "+attr, "%q is not one of %s", value, strings.Join(allowed, ", "))
	return value
}

var (
	nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$`)
	// Azure's name rules, as Azure states them in its refusals
	// (learn.microsoft.com/azure/virtual-machines/troubleshooting-shared-images):
	// a gallery is 1-80 letters, digits, '_' and '.', starting and ending
	// with a letter or digit; a definition (spec pattern
	// ^[^_\W][\w-._]{0,79}(?<![-.])$, and the page refuses a trailing '_'
	// too) also allows '-'. azemu enforces the same (resources.go).
	galleryRE     = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.]{0,78}[A-Za-z0-9])?$`)
	definitionRE  = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9])?$`)
	uuidRE        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	rgRE          = regexp.MustCompile(`^[-\w._()]{1,90}$`)
	locationRE    = regexp.MustCompile(`^[a-z0-9]{2,40}$`)
	storageAcctRE = regexp.MustCompile(`^[a-z0-9]{3,24}$`)
	containerRE   = regexp.MustCompile(`^[a-z0-9](?:[a-z0-9]|-[a-z0-9]){2,62}$`)
)

// NormalizeLocation turns "West Europe" into "westeurope", as ARM does.
func NormalizeLocation(s string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(s), " ", ""))
}

func (v *validator) file(raw *rawFile, filename, dir string) *File {
	out := &File{Path: filename, Dir: dir}
	images := map[string]bool{}
	for i := range raw.Images {
		img := v.image(&raw.Images[i], dir)
		if images[img.Name] {
			v.errf(raw.Images[i].DefRange, "duplicate image", "image %q is declared twice", img.Name)
		}
		images[img.Name] = true
		out.Images = append(out.Images, img)
	}
	if len(raw.Images) == 0 {
		v.errf(hcl.Range{Filename: filename, Start: hcl.InitialPos, End: hcl.InitialPos}, "no image",
			"the pipeline file declares no image block; add image \"NAME\" { source = \"build/disk.vhdx\" ... }")
	}
	azNames := map[string]bool{}
	for i := range raw.Azure {
		r := &raw.Azure[i]
		if azNames[r.Name] {
			v.errf(r.DefRange, "duplicate azure block", "azure %q is declared twice", r.Name)
		}
		azNames[r.Name] = true
		a := v.azure(r)
		a.Image = v.imageOf(out, r.Image, r.Body, r.DefRange, fmt.Sprintf("azure %q", r.Name))
		if img := out.image(a.Image); img != nil && img.SecurityType == "TrustedLaunch" && a.ManagedImage {
			if r.ManagedImage != nil && *r.ManagedImage {
				v.errf(attrRange(r.Body, "managed_image", r.DefRange), "managed image not possible",
					"image %q uses security_type = \"TrustedLaunch\", which a managed image cannot carry; remove managed_image = true (the version is then made straight from the VHD blob or the disk)", img.Name)
			}
			a.ManagedImage = false
		}
		out.Azure = append(out.Azure, a)
	}
	opNames := map[string]bool{}
	for i := range raw.OnPrem {
		r := &raw.OnPrem[i]
		if opNames[r.Name] {
			v.errf(r.DefRange, "duplicate onprem block", "onprem %q is declared twice", r.Name)
		}
		opNames[r.Name] = true
		o := OnPrem{Name: r.Name, Library: r.Library, Channel: str(r.Channel)}
		o.Image = v.imageOf(out, r.Image, r.Body, r.DefRange, fmt.Sprintf("onprem %q", r.Name))
		if o.Channel == "" {
			o.Channel = "test"
		}
		if strings.TrimSpace(o.Library) == "" {
			v.errf(attrRange(r.Body, "library", r.DefRange), "invalid library", "onprem %q: library must be a directory or share path", r.Name)
		} else if !filepath.IsAbs(o.Library) && !strings.HasPrefix(o.Library, `\\`) {
			o.Library = filepath.Join(dir, o.Library)
		}
		if !nameRE.MatchString(o.Channel) {
			v.errf(attrRange(r.Body, "channel", r.DefRange), "invalid channel", "channel %q: use letters, digits, '.', '_' or '-'", o.Channel)
		}
		out.OnPrem = append(out.OnPrem, o)
	}
	if len(raw.Catalog) > 1 {
		v.errf(raw.Catalog[1].DefRange, "duplicate catalog block", "declare at most one catalog block")
	}
	if len(raw.Catalog) > 0 {
		out.Catalog = &Catalog{URL: raw.Catalog[0].URL}
		if strings.TrimSpace(out.Catalog.URL) == "" {
			v.errf(raw.Catalog[0].DefRange, "invalid catalog url", "url must not be empty (e.g. sqlite:///var/lib/imgpipe/catalog.db or postgres://host/db)")
		}
		if u := out.Catalog.URL; strings.Contains(u, "@") && strings.Contains(u, "://") {
			if userinfo := strings.SplitN(strings.SplitN(u, "://", 2)[1], "@", 2)[0]; strings.Contains(userinfo, ":") {
				v.errf(raw.Catalog[0].DefRange, "password in catalog url",
					"the catalog url holds a password; remove it and use the PGPASSWORD environment variable or a .pgpass file (no secrets in the pipeline file)")
			}
		}
	}
	if len(raw.Retention) > 1 {
		v.errf(raw.Retention[1].DefRange, "duplicate retention block", "declare at most one retention block")
	}
	if len(raw.Retention) > 0 {
		r := &raw.Retention[0]
		ret := &Retention{ProtectChannels: r.ProtectChannels}
		if r.KeepLast != nil {
			ret.KeepLast = *r.KeepLast
			if ret.KeepLast < 1 {
				v.errf(attrRange(r.Body, "keep_last", r.DefRange), "invalid keep_last", "keep_last must be at least 1")
			}
		}
		if r.KeepWithin != nil {
			d, err := ParseDuration(*r.KeepWithin)
			if err != nil || d <= 0 {
				v.errf(attrRange(r.Body, "keep_within", r.DefRange), "invalid keep_within", "%q: use a duration such as \"720h\" or \"90d\"", *r.KeepWithin)
			}
			ret.KeepWithin = d
		}
		for k := range r.ExcludeTags {
			if k == "" {
				v.errf(attrRange(r.Body, "exclude_tags", r.DefRange), "invalid exclude_tags", "exclude_tags keys must not be empty")
			}
		}
		ret.ExcludeTags = r.ExcludeTags
		for _, reg := range r.ExcludeRegions {
			if strings.TrimSpace(reg) == "" {
				v.errf(attrRange(r.Body, "exclude_regions", r.DefRange), "invalid exclude_regions", "exclude_regions must name regions (e.g. \"westeurope\")")
				continue
			}
			ret.ExcludeRegions = append(ret.ExcludeRegions, NormalizeLocation(reg))
		}
		if r.GracePeriod != nil {
			d, err := ParseDuration(*r.GracePeriod)
			if err != nil || d < 0 {
				v.errf(attrRange(r.Body, "grace_period", r.DefRange), "invalid grace_period", "%q: use a duration such as \"14d\" or \"336h\"", *r.GracePeriod)
			}
			ret.GracePeriod = &d
		}
		out.Retention = ret
	}
	return out
}

func (v *validator) image(r *rawImage, dir string) Image {
	img := Image{
		Name:        r.Name,
		Source:      str(r.Source),
		Publisher:   str(r.Publisher),
		Offer:       str(r.Offer),
		SKU:         str(r.SKU),
		Description: str(r.Description),
		Range:       r.DefRange,
	}
	if !nameRE.MatchString(r.Name) {
		v.errf(r.DefRange, "invalid image name", "%q: use 1-80 letters, digits, '.', '_' or '-'", r.Name)
	}
	switch {
	case r.Source != nil && len(r.Packer) > 0:
		v.errf(attrRange(r.Body, "source", r.DefRange), "two sources",
			"image %q has both source and a packer block; keep one (source for a disk file you already have, packer to build it)", r.Name)
	case r.Source == nil && len(r.Packer) == 0:
		v.errf(r.DefRange, "no source", "image %q needs source = \"path/to/disk.vhdx\" or a packer { template = ... } block", r.Name)
	case len(r.Packer) > 1:
		v.errf(r.DefRange, "two packer blocks", "image %q: declare one packer block", r.Name)
	}
	if r.Source != nil {
		if strings.TrimSpace(img.Source) == "" {
			v.errf(attrRange(r.Body, "source", r.DefRange), "invalid source", "source must be a path to a disk file")
		} else if !filepath.IsAbs(img.Source) {
			img.Source = filepath.Join(dir, img.Source)
		}
	}
	if len(r.Packer) > 0 {
		p := r.Packer[0]
		img.Packer = &Packer{Template: p.Template, Vars: p.Vars, Only: p.Only, Artifact: str(p.Artifact)}
		if strings.TrimSpace(p.Template) == "" {
			v.errf(r.DefRange, "invalid packer template", "packer.template must be a path to a Packer template")
		} else if !filepath.IsAbs(p.Template) {
			img.Packer.Template = filepath.Join(dir, p.Template)
		}
		if img.Packer.Artifact != "" && !filepath.IsAbs(img.Packer.Artifact) {
			img.Packer.Artifact = filepath.Join(dir, img.Packer.Artifact)
		}
		for k := range p.Vars {
			if looksSecret(k) {
				v.errf(attrRange(p.Body, "vars", r.DefRange), "secret in packer vars",
					"packer variable %q looks like a secret; pass secrets to Packer through its environment (PKR_VAR_%s), never in the pipeline file", k, k)
			}
		}
	}
	img.OSType = v.oneOf(r.Body, r.DefRange, "os_type", str(r.OSType), "Linux", "Windows")
	if img.OSType == "" {
		v.errf(r.DefRange, "missing os_type", "image %q: set os_type = \"Linux\" or \"Windows\"", r.Name)
	}
	img.OSState = v.oneOf(r.Body, r.DefRange, "os_state", str(r.OSState), "Generalized", "Specialized")
	if img.OSState == "" {
		img.OSState = "Generalized"
	}
	img.HyperVGeneration = v.oneOf(r.Body, r.DefRange, "hyperv_generation", str(r.HyperVGeneration), "V1", "V2")
	img.SecurityType = v.oneOf(r.Body, r.DefRange, "security_type", str(r.SecurityType), "Standard", "TrustedLaunch")
	if img.SecurityType == "" {
		img.SecurityType = "Standard"
	}
	if img.SecurityType == "TrustedLaunch" && img.HyperVGeneration == "V1" {
		v.errf(attrRange(r.Body, "security_type", r.DefRange), "Trusted Launch needs generation 2",
			"image %q: security_type = \"TrustedLaunch\" requires hyperv_generation = \"V2\" (UEFI boot), not \"V1\"", r.Name)
	}
	img.Architecture = v.oneOf(r.Body, r.DefRange, "architecture", str(r.Architecture), "x64", "Arm64")
	if img.Architecture == "" {
		img.Architecture = "x64"
	}
	if img.Architecture == "Arm64" && img.HyperVGeneration == "V1" {
		v.errf(attrRange(r.Body, "architecture", r.DefRange), "Arm64 needs generation 2", "image %q: Arm64 images must be hyperv_generation = \"V2\"", r.Name)
	}
	for _, id := range []struct{ attr, val string }{{"publisher", img.Publisher}, {"offer", img.Offer}, {"sku", img.SKU}} {
		if id.val == "" {
			continue
		}
		if !nameRE.MatchString(id.val) {
			v.errf(attrRange(r.Body, id.attr, r.DefRange), "invalid "+id.attr, "%q: use 1-80 letters, digits, '.', '_' or '-'", id.val)
		}
	}
	return img
}

// looksSecret reports names that usually hold secrets.
func looksSecret(name string) bool {
	n := strings.ToLower(name)
	for _, s := range []string{"password", "secret", "token", "sas", "apikey", "api_key", "access_key", "account_key", "private_key"} {
		if strings.Contains(n, s) {
			return true
		}
	}
	return false
}

func (v *validator) azure(r *rawAzure) Azure {
	a := Azure{
		Name:          r.Name,
		Subscription:  strings.ToLower(r.Subscription),
		ResourceGroup: r.ResourceGroup,
		Location:      NormalizeLocation(r.Location),
		Upload:        str(r.Upload),
		Gallery:       r.Gallery,
		Definition:    r.Definition,
		Version:       r.Version,
		ManagedImage:  true,
		Range:         r.DefRange,
	}
	at := func(name string) hcl.Range { return attrRange(r.Body, name, r.DefRange) }
	if !uuidRE.MatchString(a.Subscription) {
		v.errf(at("subscription"), "invalid subscription", "%q is not a subscription id (a GUID such as 00000000-0000-0000-0000-000000000000)", r.Subscription)
	}
	if !rgRE.MatchString(a.ResourceGroup) || strings.HasSuffix(a.ResourceGroup, ".") {
		v.errf(at("resource_group"), "invalid resource_group", "%q: 1-90 letters, digits, '_', '-', '.', '(' or ')', not ending in '.'", a.ResourceGroup)
	}
	if !locationRE.MatchString(a.Location) {
		v.errf(at("location"), "invalid location", "%q is not an Azure region name (e.g. westeurope)", r.Location)
	}
	if !galleryRE.MatchString(a.Gallery) {
		v.errf(at("gallery"), "invalid gallery", "%q: a gallery name is 1-80 letters, digits, '.' or '_' (no '-'), starting and ending with a letter or digit", a.Gallery)
	}
	if !definitionRE.MatchString(a.Definition) {
		v.errf(at("definition"), "invalid definition", "%q: a definition name is 1-80 letters, digits, '.', '_' or '-', starting and ending with a letter or digit", a.Definition)
	}
	if a.Version != "next-patch" && !ValidVersion(a.Version) {
		v.errf(at("version"), "invalid version", "%q: use Major.Minor.Patch integers (e.g. \"1.2.3\") or \"next-patch\"", a.Version)
	}
	a.Upload = v.oneOf(r.Body, r.DefRange, "upload", a.Upload, "blob", "disk")
	if a.Upload == "" {
		a.Upload = "blob"
	}
	if len(r.Storage) > 1 {
		v.errf(r.Storage[1].DefRange, "duplicate storage block", "declare one storage block")
	}
	if len(r.Storage) > 0 {
		s := r.Storage[0]
		a.Storage = &Storage{Account: s.Account, Container: s.Container, ResourceGroup: str(s.ResourceGroup), BlobEndpoint: strings.TrimRight(str(s.BlobEndpoint), "/")}
		if a.Storage.ResourceGroup == "" {
			a.Storage.ResourceGroup = a.ResourceGroup
		}
		if !storageAcctRE.MatchString(s.Account) {
			v.errf(attrRange(s.Body, "account", s.DefRange), "invalid storage account", "%q: 3-24 lowercase letters and digits", s.Account)
		}
		if !containerRE.MatchString(s.Container) {
			v.errf(attrRange(s.Body, "container", s.DefRange), "invalid container", "%q: 3-63 lowercase letters, digits and single '-'", s.Container)
		}
		if e := a.Storage.BlobEndpoint; e != "" && !strings.HasPrefix(e, "https://") && !strings.HasPrefix(e, "http://") {
			v.errf(attrRange(s.Body, "blob_endpoint", s.DefRange), "invalid blob_endpoint", "%q must be an http(s) URL", e)
		}
		if e := a.Storage.BlobEndpoint; strings.Contains(e, "?") || strings.Contains(strings.ToLower(e), "sig=") {
			v.errf(attrRange(s.Body, "blob_endpoint", s.DefRange), "SAS token in blob_endpoint",
				"blob_endpoint must not carry a SAS token or query string; give credentials through the environment (no secrets in the pipeline file)")
		}
	}
	if a.Upload == "blob" && a.Storage == nil {
		v.errf(r.DefRange, "storage required", "azure %q uploads to a page blob: add storage { account = \"...\" container = \"...\" }, or set upload = \"disk\"", r.Name)
	}
	if r.ManagedImage != nil {
		a.ManagedImage = *r.ManagedImage
	}
	if a.Upload == "disk" {
		if r.ManagedImage != nil && *r.ManagedImage {
			v.errf(at("managed_image"), "managed image not possible", "with upload = \"disk\" the version is made from the managed disk; remove managed_image = true")
		}
		a.ManagedImage = false
	}
	if r.KeepManagedImage != nil {
		a.KeepManagedImage = *r.KeepManagedImage
	} else {
		a.KeepManagedImage = true
	}
	if r.ExcludeFromLatest != nil {
		a.ExcludeFromLatest = *r.ExcludeFromLatest
	}
	if r.EndOfLife != nil {
		t, err := parseDate(*r.EndOfLife)
		if err != nil {
			v.errf(at("end_of_life"), "invalid end_of_life", "%q: use a date (2027-12-31) or an RFC 3339 time", *r.EndOfLife)
		}
		a.EndOfLife = t
	}
	a.ReplicationTimeout = 3 * time.Hour
	if r.ReplicationTimeout != nil {
		d, err := ParseDuration(*r.ReplicationTimeout)
		if err != nil || d <= 0 {
			v.errf(at("replication_timeout"), "invalid replication_timeout", "%q: use a duration such as \"2h\" or \"90m\"", *r.ReplicationTimeout)
		}
		a.ReplicationTimeout = d
	}
	seen := map[string]bool{}
	for _, tr := range r.TargetRegions {
		t := TargetRegion{Name: NormalizeLocation(tr.Name), Replicas: 1, StorageAccountType: "Standard_LRS", ExcludeFromLatest: tr.ExcludeFromLatest}
		if !locationRE.MatchString(t.Name) {
			v.errf(tr.DefRange, "invalid target_region", "%q is not an Azure region name", tr.Name)
		}
		if seen[t.Name] {
			v.errf(tr.DefRange, "duplicate target_region", "region %q is listed twice", t.Name)
		}
		seen[t.Name] = true
		if tr.Replicas != nil {
			if *tr.Replicas < 1 || *tr.Replicas > 100 {
				v.errf(attrRange(tr.Body, "replicas", tr.DefRange), "invalid replicas", "replicas must be 1-100, not %d", *tr.Replicas)
			}
			t.Replicas = int32(*tr.Replicas)
		}
		if tr.StorageAccountType != nil {
			t.StorageAccountType = v.oneOf(tr.Body, tr.DefRange, "storage_account_type", *tr.StorageAccountType, "Standard_LRS", "Standard_ZRS", "Premium_LRS")
		}
		a.TargetRegions = append(a.TargetRegions, t)
	}
	if a.Location != "" && !seen[a.Location] {
		// Azure requires the version's own region among its targets.
		a.TargetRegions = append([]TargetRegion{{Name: a.Location, Replicas: 1, StorageAccountType: "Standard_LRS"}}, a.TargetRegions...)
	}
	shared := map[string]bool{}
	for _, s := range r.Shares {
		sh := Share{Subscription: strings.ToLower(s.Subscription), PrincipalID: strings.ToLower(s.PrincipalID), PrincipalType: str(s.PrincipalType)}
		if !uuidRE.MatchString(sh.Subscription) {
			v.errf(attrRange(s.Body, "subscription", s.DefRange), "invalid share subscription", "%q is not a subscription id", s.Subscription)
		}
		if !uuidRE.MatchString(sh.PrincipalID) {
			v.errf(attrRange(s.Body, "principal_id", s.DefRange), "invalid principal_id",
				"%q is not an object id; give the object id of the service principal, managed identity or group that deploys in subscription %s", s.PrincipalID, s.Subscription)
		}
		sh.PrincipalType = v.oneOf(s.Body, s.DefRange, "principal_type", sh.PrincipalType, "ServicePrincipal", "Group", "User")
		if sh.PrincipalType == "" {
			sh.PrincipalType = "ServicePrincipal"
		}
		if shared[sh.PrincipalID+"/"+sh.Subscription] {
			v.errf(s.DefRange, "duplicate share", "principal %s for subscription %s is listed twice", sh.PrincipalID, sh.Subscription)
		}
		shared[sh.PrincipalID+"/"+sh.Subscription] = true
		a.Shares = append(a.Shares, sh)
	}
	sort.SliceStable(a.Shares, func(i, j int) bool { return a.Shares[i].PrincipalID < a.Shares[j].PrincipalID })
	return a
}
