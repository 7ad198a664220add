// Package azure publishes an image to an Azure Compute Gallery as plan/apply:
// it reads the current state through narrow interfaces over the Azure SDK
// clients, decides the steps (create / keep / update / replicate / share /
// delete), and carries them out idempotently, so that a killed run, re-run,
// ends in the same state with no duplicate resources.
//
// Every Azure call goes through the unmodified SDK (armcompute,
// armauthorization, armresources); azcore's pipeline retries 429/5xx. The only
// retry of our own is for gallery eventual consistency (see retry.go).
package azure

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/authorization/armauthorization/v2"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/storage/armstorage"
)

// One narrow interface per SDK client, holding only the methods imgpipe uses.
// The real clients satisfy them (checked below).

// ResourceGroupsAPI is the part of armresources.ResourceGroupsClient used here.
type ResourceGroupsAPI interface {
	Get(ctx context.Context, name string, o *armresources.ResourceGroupsClientGetOptions) (armresources.ResourceGroupsClientGetResponse, error)
	CreateOrUpdate(ctx context.Context, name string, rg armresources.ResourceGroup, o *armresources.ResourceGroupsClientCreateOrUpdateOptions) (armresources.ResourceGroupsClientCreateOrUpdateResponse, error)
}

// GalleriesAPI is the part of armcompute.GalleriesClient used here.
type GalleriesAPI interface {
	Get(ctx context.Context, rg, gallery string, o *armcompute.GalleriesClientGetOptions) (armcompute.GalleriesClientGetResponse, error)
	BeginCreateOrUpdate(ctx context.Context, rg, gallery string, g armcompute.Gallery, o *armcompute.GalleriesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armcompute.GalleriesClientCreateOrUpdateResponse], error)
	BeginDelete(ctx context.Context, rg, gallery string, o *armcompute.GalleriesClientBeginDeleteOptions) (*runtime.Poller[armcompute.GalleriesClientDeleteResponse], error)
}

// GalleryImagesAPI is the part of armcompute.GalleryImagesClient (definitions) used here.
type GalleryImagesAPI interface {
	Get(ctx context.Context, rg, gallery, def string, o *armcompute.GalleryImagesClientGetOptions) (armcompute.GalleryImagesClientGetResponse, error)
	BeginCreateOrUpdate(ctx context.Context, rg, gallery, def string, d armcompute.GalleryImage, o *armcompute.GalleryImagesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armcompute.GalleryImagesClientCreateOrUpdateResponse], error)
	BeginDelete(ctx context.Context, rg, gallery, def string, o *armcompute.GalleryImagesClientBeginDeleteOptions) (*runtime.Poller[armcompute.GalleryImagesClientDeleteResponse], error)
	NewListByGalleryPager(rg, gallery string, o *armcompute.GalleryImagesClientListByGalleryOptions) *runtime.Pager[armcompute.GalleryImagesClientListByGalleryResponse]
}

// GalleryImageVersionsAPI is the part of armcompute.GalleryImageVersionsClient used here.
type GalleryImageVersionsAPI interface {
	Get(ctx context.Context, rg, gallery, def, version string, o *armcompute.GalleryImageVersionsClientGetOptions) (armcompute.GalleryImageVersionsClientGetResponse, error)
	BeginCreateOrUpdate(ctx context.Context, rg, gallery, def, version string, v armcompute.GalleryImageVersion, o *armcompute.GalleryImageVersionsClientBeginCreateOrUpdateOptions) (*runtime.Poller[armcompute.GalleryImageVersionsClientCreateOrUpdateResponse], error)
	BeginUpdate(ctx context.Context, rg, gallery, def, version string, v armcompute.GalleryImageVersionUpdate, o *armcompute.GalleryImageVersionsClientBeginUpdateOptions) (*runtime.Poller[armcompute.GalleryImageVersionsClientUpdateResponse], error)
	BeginDelete(ctx context.Context, rg, gallery, def, version string, o *armcompute.GalleryImageVersionsClientBeginDeleteOptions) (*runtime.Poller[armcompute.GalleryImageVersionsClientDeleteResponse], error)
	NewListByGalleryImagePager(rg, gallery, def string, o *armcompute.GalleryImageVersionsClientListByGalleryImageOptions) *runtime.Pager[armcompute.GalleryImageVersionsClientListByGalleryImageResponse]
}

// ImagesAPI is the part of armcompute.ImagesClient (managed images) used here.
type ImagesAPI interface {
	Get(ctx context.Context, rg, name string, o *armcompute.ImagesClientGetOptions) (armcompute.ImagesClientGetResponse, error)
	BeginCreateOrUpdate(ctx context.Context, rg, name string, img armcompute.Image, o *armcompute.ImagesClientBeginCreateOrUpdateOptions) (*runtime.Poller[armcompute.ImagesClientCreateOrUpdateResponse], error)
	BeginDelete(ctx context.Context, rg, name string, o *armcompute.ImagesClientBeginDeleteOptions) (*runtime.Poller[armcompute.ImagesClientDeleteResponse], error)
}

// DisksAPI is the part of armcompute.DisksClient used here (the managed
// disk of a direct upload; the upload itself is internal/transfer's).
type DisksAPI interface {
	Get(ctx context.Context, rg, name string, o *armcompute.DisksClientGetOptions) (armcompute.DisksClientGetResponse, error)
	BeginUpdate(ctx context.Context, rg, name string, d armcompute.DiskUpdate, o *armcompute.DisksClientBeginUpdateOptions) (*runtime.Poller[armcompute.DisksClientUpdateResponse], error)
	BeginDelete(ctx context.Context, rg, name string, o *armcompute.DisksClientBeginDeleteOptions) (*runtime.Poller[armcompute.DisksClientDeleteResponse], error)
	BeginRevokeAccess(ctx context.Context, rg, name string, o *armcompute.DisksClientBeginRevokeAccessOptions) (*runtime.Poller[armcompute.DisksClientRevokeAccessResponse], error)
}

// VirtualMachinesAPI lists VMs, to find the ones still using a version.
type VirtualMachinesAPI interface {
	NewListAllPager(o *armcompute.VirtualMachinesClientListAllOptions) *runtime.Pager[armcompute.VirtualMachinesClientListAllResponse]
}

// ScaleSetsAPI lists scale sets, to find the ones still using a version,
// and updates a scale set's model and instances (rollout.go).
type ScaleSetsAPI interface {
	NewListAllPager(o *armcompute.VirtualMachineScaleSetsClientListAllOptions) *runtime.Pager[armcompute.VirtualMachineScaleSetsClientListAllResponse]
	Get(ctx context.Context, rg, name string, o *armcompute.VirtualMachineScaleSetsClientGetOptions) (armcompute.VirtualMachineScaleSetsClientGetResponse, error)
	BeginUpdate(ctx context.Context, rg, name string, p armcompute.VirtualMachineScaleSetUpdate, o *armcompute.VirtualMachineScaleSetsClientBeginUpdateOptions) (*runtime.Poller[armcompute.VirtualMachineScaleSetsClientUpdateResponse], error)
	BeginUpdateInstances(ctx context.Context, rg, name string, ids armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs, o *armcompute.VirtualMachineScaleSetsClientBeginUpdateInstancesOptions) (*runtime.Poller[armcompute.VirtualMachineScaleSetsClientUpdateInstancesResponse], error)
}

// ScaleSetVMsAPI lists a scale set's instances (rollout.go).
type ScaleSetVMsAPI interface {
	NewListPager(rg, name string, o *armcompute.VirtualMachineScaleSetVMsClientListOptions) *runtime.Pager[armcompute.VirtualMachineScaleSetVMsClientListResponse]
}

// RollingUpgradesAPI starts and follows a scale set's rolling upgrade (rollout.go).
type RollingUpgradesAPI interface {
	BeginStartOSUpgrade(ctx context.Context, rg, name string, o *armcompute.VirtualMachineScaleSetRollingUpgradesClientBeginStartOSUpgradeOptions) (*runtime.Poller[armcompute.VirtualMachineScaleSetRollingUpgradesClientStartOSUpgradeResponse], error)
	GetLatest(ctx context.Context, rg, name string, o *armcompute.VirtualMachineScaleSetRollingUpgradesClientGetLatestOptions) (armcompute.VirtualMachineScaleSetRollingUpgradesClientGetLatestResponse, error)
	BeginCancel(ctx context.Context, rg, name string, o *armcompute.VirtualMachineScaleSetRollingUpgradesClientBeginCancelOptions) (*runtime.Poller[armcompute.VirtualMachineScaleSetRollingUpgradesClientCancelResponse], error)
}

// RoleAssignmentsAPI is the part of armauthorization.RoleAssignmentsClient used here.
type RoleAssignmentsAPI interface {
	Create(ctx context.Context, scope, name string, p armauthorization.RoleAssignmentCreateParameters, o *armauthorization.RoleAssignmentsClientCreateOptions) (armauthorization.RoleAssignmentsClientCreateResponse, error)
	DeleteByID(ctx context.Context, id string, o *armauthorization.RoleAssignmentsClientDeleteByIDOptions) (armauthorization.RoleAssignmentsClientDeleteByIDResponse, error)
	NewListForScopePager(scope string, o *armauthorization.RoleAssignmentsClientListForScopeOptions) *runtime.Pager[armauthorization.RoleAssignmentsClientListForScopeResponse]
}

// StorageAccountsAPI is the part of armstorage.AccountsClient used here: the
// plan reads the account a blob goes to (its region) and checks the identity
// may list its keys (what a version from its VHD needs), before uploading.
type StorageAccountsAPI interface {
	GetProperties(ctx context.Context, rg, name string, o *armstorage.AccountsClientGetPropertiesOptions) (armstorage.AccountsClientGetPropertiesResponse, error)
	ListKeys(ctx context.Context, rg, name string, o *armstorage.AccountsClientListKeysOptions) (armstorage.AccountsClientListKeysResponse, error)
}

var (
	_ StorageAccountsAPI      = (*armstorage.AccountsClient)(nil)
	_ ResourceGroupsAPI       = (*armresources.ResourceGroupsClient)(nil)
	_ GalleriesAPI            = (*armcompute.GalleriesClient)(nil)
	_ GalleryImagesAPI        = (*armcompute.GalleryImagesClient)(nil)
	_ GalleryImageVersionsAPI = (*armcompute.GalleryImageVersionsClient)(nil)
	_ ImagesAPI               = (*armcompute.ImagesClient)(nil)
	_ DisksAPI                = (*armcompute.DisksClient)(nil)
	_ VirtualMachinesAPI      = (*armcompute.VirtualMachinesClient)(nil)
	_ ScaleSetsAPI            = (*armcompute.VirtualMachineScaleSetsClient)(nil)
	_ ScaleSetVMsAPI          = (*armcompute.VirtualMachineScaleSetVMsClient)(nil)
	_ RollingUpgradesAPI      = (*armcompute.VirtualMachineScaleSetRollingUpgradesClient)(nil)
	_ RoleAssignmentsAPI      = (*armauthorization.RoleAssignmentsClient)(nil)
)

// Clients are the ARM clients for one subscription.
type Clients struct {
	Subscription    string
	ResourceGroups  ResourceGroupsAPI
	Galleries       GalleriesAPI
	Definitions     GalleryImagesAPI
	Versions        GalleryImageVersionsAPI
	Images          ImagesAPI
	Disks           DisksAPI
	VMs             VirtualMachinesAPI
	ScaleSets       ScaleSetsAPI
	ScaleSetVMs     ScaleSetVMsAPI
	RollingUpgrades RollingUpgradesAPI
	RoleAssignments RoleAssignmentsAPI
	// StorageAccounts may be nil (fakes): the storage checks are then skipped.
	StorageAccounts StorageAccountsAPI
}

// NewClients builds the real SDK clients for subscription.
func NewClients(subscription string, cred azcore.TokenCredential, opts *arm.ClientOptions) (*Clients, error) {
	rg, err := armresources.NewResourceGroupsClient(subscription, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("resource groups client: %w", err)
	}
	cf, err := armcompute.NewClientFactory(subscription, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("compute clients: %w", err)
	}
	ra, err := armauthorization.NewRoleAssignmentsClient(subscription, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("role assignments client: %w", err)
	}
	sa, err := armstorage.NewAccountsClient(subscription, cred, opts)
	if err != nil {
		return nil, fmt.Errorf("storage accounts client: %w", err)
	}
	return &Clients{
		StorageAccounts: sa,
		Subscription:    subscription,
		ResourceGroups:  rg,
		Galleries:       cf.NewGalleriesClient(),
		Definitions:     cf.NewGalleryImagesClient(),
		Versions:        cf.NewGalleryImageVersionsClient(),
		Images:          cf.NewImagesClient(),
		Disks:           cf.NewDisksClient(),
		VMs:             cf.NewVirtualMachinesClient(),
		ScaleSets:       cf.NewVirtualMachineScaleSetsClient(),
		ScaleSetVMs:     cf.NewVirtualMachineScaleSetVMsClient(),
		RollingUpgrades: cf.NewVirtualMachineScaleSetRollingUpgradesClient(),
		RoleAssignments: ra,
	}, nil
}
