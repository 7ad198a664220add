package azemu_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

// BenchmarkStart measures New+Start+Close (certificate generation included).
func BenchmarkStart(b *testing.B) {
	for b.Loop() {
		s, err := azemu.New(azemu.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Start("127.0.0.1:0"); err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkGalleryLRO measures one create-or-update LRO through the SDK
// (PUT, status polls, final GET) with operations that finish at once.
func BenchmarkGalleryLRO(b *testing.B) {
	env := azemutest.Start(b, azemu.Options{LRODelay: time.Millisecond, RetryAfter: time.Millisecond})
	ctx := context.Background()
	rgs, _ := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if _, err := rgs.CreateOrUpdate(ctx, "bench", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		b.Fatal(err)
	}
	gc, _ := armcompute.NewGalleriesClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	i := 0
	for b.Loop() {
		i++
		p, err := gc.BeginCreateOrUpdate(ctx, "bench", fmt.Sprintf("g%d", i%50), armcompute.Gallery{Location: to.Ptr("westeurope")}, nil)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: time.Second}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGet measures one GET through the SDK.
func BenchmarkGet(b *testing.B) {
	env := azemutest.Start(b, azemu.Options{LRODelay: time.Millisecond, RetryAfter: time.Millisecond})
	ctx := context.Background()
	rgs, _ := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if _, err := rgs.CreateOrUpdate(ctx, "bench", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := rgs.Get(ctx, "bench", nil); err != nil {
			b.Fatal(err)
		}
	}
}
