package config

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// File is a validated pipeline file.
type File struct {
	Path      string // the file it was read from ("" for Parse of bytes without a name)
	Dir       string // the directory relative paths are resolved against
	Images    []Image
	Azure     []Azure
	OnPrem    []OnPrem
	Catalog   *Catalog
	Retention *Retention
	Tests     []Test    // test blocks (tests.go)
	Rebuilds  []Rebuild // rebuild blocks (rebuild.go)
	Rollouts  []Rollout // rollout blocks (rollout.go)
	Channels  []Channel // channel blocks (channels.go)
}

// Image declares one image and where its bits come from.
type Image struct {
	Name string
	// Source is the disk file (VHDX, VHD or raw), resolved against File.Dir.
	// Empty when the image is built by Packer.
	Source string
	Packer *Packer

	OSType           string // "Linux" or "Windows"
	OSState          string // "Generalized" or "Specialized"
	HyperVGeneration string // "V1", "V2" or "" (derived from the disk)
	SecurityType     string // "Standard" or "TrustedLaunch"
	Architecture     string // "x64" or "Arm64"
	Publisher        string
	Offer            string
	SKU              string
	Description      string

	Range hcl.Range
}

// Packer declares that the image is built by Packer from a template.
type Packer struct {
	Template string            // resolved against File.Dir
	Vars     map[string]string // -var name=value
	Only     []string          // -only builders
	// Artifact is the path (or glob) of the disk the build produces,
	// resolved against File.Dir; "" lets the build runner find it.
	Artifact string
}

// Azure declares one Azure Compute Gallery destination.
type Azure struct {
	Name          string
	Image         string // name of the image block it publishes
	Subscription  string
	ResourceGroup string
	Location      string

	// Upload is "blob" (page blob in Storage, the default) or "disk"
	// (managed disk created for direct upload).
	Upload  string
	Storage *Storage

	// ManagedImage: create a managed image from the blob and make the
	// version from it (the default for Standard security). When false the
	// version is made straight from the VHD blob or the managed disk, which
	// Trusted Launch requires.
	ManagedImage     bool
	KeepManagedImage bool

	Gallery    string
	Definition string
	// Version is "Major.Minor.Patch" or "next-patch".
	Version string

	TargetRegions      []TargetRegion
	ExcludeFromLatest  bool
	EndOfLife          time.Time // zero: none
	ReplicationTimeout time.Duration
	Shares             []Share

	Range hcl.Range
}

// Storage is where the page blob is uploaded.
type Storage struct {
	Account       string
	Container     string
	ResourceGroup string // defaults to the azure block's resource group
	// BlobEndpoint overrides https://ACCOUNT.blob.core.windows.net (Azurite, sovereign clouds).
	BlobEndpoint string
}

// TargetRegion is one region the version is replicated to.
type TargetRegion struct {
	Name               string
	Replicas           int32
	StorageAccountType string // Standard_LRS, Standard_ZRS, Premium_LRS
	ExcludeFromLatest  *bool  // nil: the version's setting
}

// Share grants a principal read access (the built-in Reader role) on the
// gallery, so that deployments running as that principal in Subscription can
// use the image. Azure RBAC grants access to principals, not subscriptions:
// "sharing with a subscription" means granting the identity that deploys
// there (a service principal, managed identity or group).
type Share struct {
	Subscription  string
	PrincipalID   string
	PrincipalType string // ServicePrincipal (default), Group, User
}

// OnPrem declares an on-premises Hyper-V library destination.
type OnPrem struct {
	Name    string
	Image   string
	Library string
	Channel string
}

// Catalog says where versions, lineage and runs are recorded.
type Catalog struct {
	URL string
}

// Retention drives garbage collection of old versions.
type Retention struct {
	KeepLast        int
	KeepWithin      time.Duration
	ProtectChannels []string
	// ExcludeTags: versions carrying one of these tags are never removed
	// (an empty value matches any value of the key).
	ExcludeTags map[string]string
	// ExcludeRegions: versions replicated to one of these regions are never removed.
	ExcludeRegions []string
	// GracePeriod is the time between deprecation and deletion (nil: gc's default).
	GracePeriod *time.Duration
}

func (f *File) image(name string) *Image {
	for i := range f.Images {
		if f.Images[i].Name == name {
			return &f.Images[i]
		}
	}
	return nil
}

// Image returns the image block named name, or nil.
func (f *File) Image(name string) *Image { return f.image(name) }

// AzureTarget returns the azure block named name; with name "" the only one.
func (f *File) AzureTarget(name string) (*Azure, error) {
	if name == "" {
		switch len(f.Azure) {
		case 0:
			return nil, errors.New("the pipeline file has no azure block: add azure \"NAME\" { ... } (see examples/pipeline.hcl)")
		case 1:
			return &f.Azure[0], nil
		}
		var names []string
		for _, a := range f.Azure {
			names = append(names, a.Name)
		}
		return nil, fmt.Errorf("the pipeline file has several azure blocks (%s): choose one with --target", strings.Join(names, ", "))
	}
	for i := range f.Azure {
		if f.Azure[i].Name == name {
			return &f.Azure[i], nil
		}
	}
	return nil, fmt.Errorf("the pipeline file has no azure block named %q", name)
}
