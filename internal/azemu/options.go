package azemu

import "time"

// Replica policies for adding a target region to a version whose source no
// longer exists.
const (
	// ReplicaPolicyStrict refuses it (the older documented behaviour: the
	// source must exist to replicate to a new region).
	ReplicaPolicyStrict = "strict"
	// ReplicaPolicyCurrent allows it when the update leaves the source out
	// (an empty storageProfile), as the current API's
	// GalleryImageVersion_Update_WithoutSourceId example does.
	ReplicaPolicyCurrent = "current"
)

// Options configure an emulator. The zero value is usable: every field has a
// default chosen for the interactive emulator (see withDefaults).
type Options struct {
	// Identity the token endpoint accepts (client-credentials grant).
	TenantID     string
	ClientID     string
	ClientSecret string
	// ObjectID is the principal (object) id of that client: role
	// assignments for it grant access to galleries of other subscriptions.
	ObjectID string
	// ExtraClients are further identities the token endpoint accepts. Unlike
	// the main client they hold no implicit access: what they may do on
	// storage accounts and galleries of other subscriptions comes only from
	// role assignments (after RBACDelay).
	ExtraClients []Client
	// Principals are object ids the emulated directory knows from the start
	// (besides the clients'): role assignments for them are accepted at once.
	// Others get PrincipalNotFound unless the request names principalType.
	Principals []string
	// RBACDelay is how long a role assignment (or a principal added with
	// AddPrincipal) takes to propagate. Azure documents "up to 10 minutes"
	// (learn.microsoft.com/azure/role-based-access-control/troubleshooting,
	// "Symptom - Role assignment changes are not being detected").
	RBACDelay time.Duration

	// StateDir keeps the state as JSON files written atomically, reloaded on
	// restart (and the TLS certificate, so clients keep trusting it). Empty
	// means in memory only.
	StateDir string

	// LRODelay is how long a long-running operation stays InProgress.
	LRODelay time.Duration
	// RetryAfter is the delay advertised on 202/201 responses and 429s. A
	// value under a second is sent as retry-after-ms (honoured by azcore)
	// next to a Retry-After of 1.
	RetryAfter time.Duration
	// ReplicationDuration is how long a gallery image version takes to reach
	// the last of its target regions.
	ReplicationDuration time.Duration
	// DeleteConflictWindow is how long a parent keeps answering 409
	// CannotDeleteResource after its last child's delete completed (ARM's
	// cache lag).
	DeleteConflictWindow time.Duration
	// ReplicaPolicy is ReplicaPolicyStrict or ReplicaPolicyCurrent.
	ReplicaPolicy string
	// PageSize is the number of items per list page (nextLink beyond).
	PageSize int

	// Storage is the blob service (Azurite) that holds blobs referenced by
	// managed images and VHD sources, and the page blobs of disk uploads.
	Storage Storage

	// MaxHashBytes bounds the content hashed to fingerprint a source blob;
	// larger blobs are fingerprinted by size, ETag and stored Content-MD5.
	MaxHashBytes int64

	// Faults injects failures for reliability tests.
	Faults Faults
}

// Storage locates a blob service with shared-key access.
type Storage struct {
	BlobEndpoint string // e.g. http://127.0.0.1:10000/devstoreaccount1
	AccountName  string
	AccountKey   string
	// Container receives the page blobs of disk direct uploads.
	Container string
	// The Microsoft.Storage/storageAccounts resource the account belongs to:
	// Azure makes managed images only from blobs in an account of the
	// image's region and subscription. Defaults: DefaultSubscriptionID,
	// resource group DefaultStorageResourceGroup, location
	// DefaultStorageLocation.
	SubscriptionID string
	ResourceGroup  string
	Location       string
}

// Client is one identity of the token endpoint (client-credentials grant).
type Client struct {
	ClientID     string
	ClientSecret string
	ObjectID     string
}

// Faults describe failures injected into ARM requests, deterministic for a
// seed. Fractions are in [0,1].
type Faults struct {
	Seed uint64
	// Throttle answers a fraction of requests 429 with Retry-After.
	Throttle float64
	// ServerError answers a fraction of requests 500 InternalServerError.
	ServerError float64
	// LROFailure makes a fraction of long-running operations end Failed.
	LROFailure float64
	// Drop closes the connection without an answer for a fraction of requests.
	Drop float64
	// IncludeToken applies the faults to the token endpoint too.
	IncludeToken bool
	// UnhealthyVersions are gallery image version names whose scale-set
	// instances report HealthState/unhealthy (vmss_rollout.go).
	UnhealthyVersions []string
}

func (f Faults) active() bool {
	return f.Throttle > 0 || f.ServerError > 0 || f.LROFailure > 0 || f.Drop > 0
}

// Defaults used when an Options field is zero.
const (
	DefaultTenantID     = "e3a1a0de-0000-4000-8000-000000000001"
	DefaultClientID     = "0e1a7c3d-0000-4000-8000-00000000c11e"
	DefaultClientSecret = "azemu-client-secret"
	DefaultObjectID     = "5b0c2a91-0000-4000-8000-0000000000b1"
	// DefaultSubscriptionID is the subscription the blob service's storage
	// account is registered in (any well-formed subscription id is served).
	DefaultSubscriptionID       = "11111111-2222-4333-8444-555555555555"
	DefaultStorageResourceGroup = "azemu-storage"
	DefaultStorageLocation      = "westeurope"
	// DefaultRBACDelay is Azure's documented worst case for a role
	// assignment to take effect.
	DefaultRBACDelay = 10 * time.Minute
)

func (o Options) withDefaults() Options {
	if o.TenantID == "" {
		o.TenantID = DefaultTenantID
	}
	if o.ClientID == "" {
		o.ClientID = DefaultClientID
	}
	if o.ClientSecret == "" {
		o.ClientSecret = DefaultClientSecret
	}
	if o.ObjectID == "" {
		o.ObjectID = DefaultObjectID
	}
	if o.LRODelay == 0 {
		o.LRODelay = 2 * time.Second
	}
	if o.RetryAfter == 0 {
		o.RetryAfter = time.Second
	}
	if o.ReplicationDuration == 0 {
		o.ReplicationDuration = 10 * time.Second
	}
	if o.DeleteConflictWindow == 0 {
		o.DeleteConflictWindow = 15 * time.Second
	}
	if o.ReplicaPolicy == "" {
		o.ReplicaPolicy = ReplicaPolicyCurrent
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.Storage.Container == "" {
		o.Storage.Container = "azemu-disks"
	}
	if o.Storage.SubscriptionID == "" {
		o.Storage.SubscriptionID = DefaultSubscriptionID
	}
	if o.Storage.ResourceGroup == "" {
		o.Storage.ResourceGroup = DefaultStorageResourceGroup
	}
	if o.Storage.Location == "" {
		o.Storage.Location = DefaultStorageLocation
	}
	if o.RBACDelay == 0 {
		o.RBACDelay = DefaultRBACDelay
	}
	if o.MaxHashBytes == 0 {
		o.MaxHashBytes = 1 << 30
	}
	return o
}
