package azemu_test

import (
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

func TestSmoke(t *testing.T) {
	env := azemutest.Start(t, azemu.Options{})
	ctx := context.Background()
	rgc, err := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rgc.CreateOrUpdate(ctx, "rg1", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	gc, _ := armcompute.NewGalleriesClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	p, err := gc.BeginCreateOrUpdate(ctx, "rg1", "g1", armcompute.Gallery{Location: to.Ptr("westeurope")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s %s", *r.ID, *r.Properties.ProvisioningState)
}
