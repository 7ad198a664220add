package config

import (
	"github.com/hashicorp/hcl/v2"
)

// raw structures decoded by gohcl; validated into the public types.
type rawFile struct {
	Images    []rawImage     `hcl:"image,block"`
	Azure     []rawAzure     `hcl:"azure,block"`
	OnPrem    []rawOnPrem    `hcl:"onprem,block"`
	Catalog   []rawCatalog   `hcl:"catalog,block"`
	Retention []rawRetention `hcl:"retention,block"`
}

type rawImage struct {
	Name             string      `hcl:"name,label"`
	Source           *string     `hcl:"source"`
	Packer           []rawPacker `hcl:"packer,block"`
	OSType           *string     `hcl:"os_type"`
	OSState          *string     `hcl:"os_state"`
	HyperVGeneration *string     `hcl:"hyperv_generation"`
	SecurityType     *string     `hcl:"security_type"`
	Architecture     *string     `hcl:"architecture"`
	Publisher        *string     `hcl:"publisher"`
	Offer            *string     `hcl:"offer"`
	SKU              *string     `hcl:"sku"`
	Description      *string     `hcl:"description"`
	Body             hcl.Body    `hcl:",body"`
	DefRange         hcl.Range   `hcl:",def_range"`
}

type rawPacker struct {
	Template string            `hcl:"template"`
	Vars     map[string]string `hcl:"vars,optional"`
	Only     []string          `hcl:"only,optional"`
	Artifact *string           `hcl:"artifact"`
	Body     hcl.Body          `hcl:",body"`
}

type rawAzure struct {
	Name               string            `hcl:"name,label"`
	Image              *string           `hcl:"image"`
	Subscription       string            `hcl:"subscription"`
	ResourceGroup      string            `hcl:"resource_group"`
	Location           string            `hcl:"location"`
	Upload             *string           `hcl:"upload"`
	Storage            []rawStorage      `hcl:"storage,block"`
	ManagedImage       *bool             `hcl:"managed_image"`
	KeepManagedImage   *bool             `hcl:"keep_managed_image"`
	Gallery            string            `hcl:"gallery"`
	Definition         string            `hcl:"definition"`
	Version            string            `hcl:"version"`
	TargetRegions      []rawTargetRegion `hcl:"target_region,block"`
	ExcludeFromLatest  *bool             `hcl:"exclude_from_latest"`
	EndOfLife          *string           `hcl:"end_of_life"`
	ReplicationTimeout *string           `hcl:"replication_timeout"`
	Shares             []rawShare        `hcl:"share,block"`
	Body               hcl.Body          `hcl:",body"`
	DefRange           hcl.Range         `hcl:",def_range"`
}

type rawStorage struct {
	Account       string    `hcl:"account"`
	Container     string    `hcl:"container"`
	ResourceGroup *string   `hcl:"resource_group"`
	BlobEndpoint  *string   `hcl:"blob_endpoint"`
	Body          hcl.Body  `hcl:",body"`
	DefRange      hcl.Range `hcl:",def_range"`
}

type rawTargetRegion struct {
	Name               string    `hcl:"name,label"`
	Replicas           *int      `hcl:"replicas"`
	StorageAccountType *string   `hcl:"storage_account_type"`
	ExcludeFromLatest  *bool     `hcl:"exclude_from_latest"`
	Body               hcl.Body  `hcl:",body"`
	DefRange           hcl.Range `hcl:",def_range"`
}

type rawShare struct {
	Subscription  string    `hcl:"subscription"`
	PrincipalID   string    `hcl:"principal_id"`
	PrincipalType *string   `hcl:"principal_type"`
	Body          hcl.Body  `hcl:",body"`
	DefRange      hcl.Range `hcl:",def_range"`
}

type rawOnPrem struct {
	Name     string    `hcl:"name,label"`
	Image    *string   `hcl:"image"`
	Library  string    `hcl:"library"`
	Channel  *string   `hcl:"channel"`
	Body     hcl.Body  `hcl:",body"`
	DefRange hcl.Range `hcl:",def_range"`
}

type rawCatalog struct {
	URL      string    `hcl:"url"`
	DefRange hcl.Range `hcl:",def_range"`
}

type rawRetention struct {
	KeepLast        *int              `hcl:"keep_last"`
	KeepWithin      *string           `hcl:"keep_within"`
	ProtectChannels []string          `hcl:"protect_channels,optional"`
	ExcludeTags     map[string]string `hcl:"exclude_tags,optional"`
	ExcludeRegions  []string          `hcl:"exclude_regions,optional"`
	GracePeriod     *string           `hcl:"grace_period"`
	Body            hcl.Body          `hcl:",body"`
	DefRange        hcl.Range         `hcl:",def_range"`
}
