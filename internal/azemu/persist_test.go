package azemu_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

// TestStatePersists restarts an emulator on the same state directory: the
// resources and the TLS certificate survive.
func TestStatePersists(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var cert []byte
	for round := 0; round < 2; round++ {
		env := azemutest.Start(t, azemu.Options{StateDir: dir})
		rgs, _ := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
		gc, _ := armcompute.NewGalleriesClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
		if round == 0 {
			cert = env.Server.CACertPEM()
			if _, err := rgs.CreateOrUpdate(ctx, "keep", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
				t.Fatal(err)
			}
			p, err := gc.BeginCreateOrUpdate(ctx, "keep", "kept", armcompute.Gallery{Location: to.Ptr("westeurope")}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
				t.Fatal(err)
			}
			env.Server.Close()
			continue
		}
		if !bytes.Equal(cert, env.Server.CACertPEM()) {
			t.Error("certificate changed across restarts")
		}
		g, err := gc.Get(ctx, "keep", "kept", nil)
		if err != nil || *g.Properties.ProvisioningState != armcompute.GalleryProvisioningStateSucceeded {
			t.Fatalf("after restart: %v", err)
		}
	}
}

func TestInMemoryStateIsEmptyAtStart(t *testing.T) {
	env := azemutest.Start(t, azemu.Options{})
	if ids := env.Server.ResourceIDs(""); len(ids) != 0 {
		t.Fatalf("fresh emulator holds %v", ids)
	}
}
