package transfer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/pageblob"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/transfer"
)

// TestUploadToManagedDisk: create a disk for direct upload in azemu (whose
// disk blobs live in Azurite), upload a VHDX, and read the disk back
// through a Read SAS; the write SAS is revoked afterwards.
func TestUploadToManagedDisk(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	ctx := context.Background()
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rgs.CreateOrUpdate(ctx, "rg1", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	size := int64(24 * mib)
	src := makeImage(t, dir, "vhdx", size, testPieces(size))
	want := fixedVHD(t, src)
	diskID := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/rg1/providers/Microsoft.Compute/disks/os1"

	newTarget := func() *transfer.DiskTarget {
		tg, err := transfer.NewDiskTarget(diskID, env.Credential(), env.ClientOptions(), transfer.DiskOptions{Location: "westeurope", HyperVGeneration: "V2"})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	res, err := transfer.Upload(ctx, src, newTarget(), transfer.Options{Workers: 4, Verify: transfer.VerifyFull})
	if err != nil {
		t.Fatal(err)
	}
	if res.BytesSent != nonZeroBytes(want) {
		t.Fatalf("sent %d bytes, want %d", res.BytesSent, nonZeroBytes(want))
	}
	disks, err := armcompute.NewDisksClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	d, err := disks.Get(ctx, "rg1", "os1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if st := *d.Properties.DiskState; st != armcompute.DiskStateUnattached {
		t.Fatalf("disk state after the upload is %s: write access was not revoked", st)
	}
	if got := *d.Properties.CreationData.UploadSizeBytes; got != int64(len(want)) {
		t.Fatalf("disk created for %d bytes, want %d", got, len(want))
	}
	p, err := disks.BeginGrantAccess(ctx, "rg1", "os1", armcompute.GrantAccessData{Access: to.Ptr(armcompute.AccessLevelRead), DurationInSeconds: to.Ptr(int32(600))}, nil)
	if err != nil {
		t.Fatal(err)
	}
	acc, err := p.PollUntilDone(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := pageblob.NewClientWithNoCredential(*acc.AccessSAS, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := download(t, pb, filepath.Join(dir, "disk.vhd"))
	if !bytes.Equal(got, want) {
		t.Fatal("managed disk content differs from the fixed VHD")
	}

	// Uploading again onto the existing disk is refused, and so is a
	// resume of a disk that is no longer ReadyToUpload.
	if _, err := transfer.Upload(ctx, src, newTarget(), transfer.Options{}); !errors.Is(err, transfer.ErrTargetExists) {
		t.Fatalf("second upload onto an existing disk: %v", err)
	}
	if _, err := os.Stat(src + transfer.CheckpointSuffix); err == nil {
		t.Fatal("a refused upload left a checkpoint")
	}
}

// killedTarget never revokes access, as a process killed mid-upload never does.
type killedTarget struct{ *transfer.DiskTarget }

func (killedTarget) Finish(context.Context) error { return nil }

// TestResumeDiskWhileActiveUpload: an upload into a managed disk is cut off
// without revoking access (kill -9), leaving the disk ActiveUpload; resuming
// grants write access again (Azure renews the SAS while ActiveUpload) and
// sends only what is missing.
func TestResumeDiskWhileActiveUpload(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	ctx := context.Background()
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rgs.CreateOrUpdate(ctx, "rg1", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	size := int64(24 * mib)
	src := makeImage(t, dir, "vhdx", size, testPieces(size))
	want := fixedVHD(t, src)
	diskID := "/subscriptions/" + env.SubscriptionID + "/resourceGroups/rg1/providers/Microsoft.Compute/disks/os2"
	newTarget := func() *transfer.DiskTarget {
		tg, err := transfer.NewDiskTarget(diskID, env.Credential(), env.ClientOptions(), transfer.DiskOptions{Location: "westeurope", HyperVGeneration: "V2"})
		if err != nil {
			t.Fatal(err)
		}
		return tg
	}
	cctx, cancel := context.WithCancel(ctx)
	first, err := transfer.Upload(cctx, src, killedTarget{newTarget()}, transfer.Options{Workers: 1, Progress: func(done, total int64) {
		if done > 0 {
			cancel()
		}
	}})
	cancel()
	if err == nil || first.BytesSent == 0 {
		t.Fatalf("the cut-off upload: %v (sent %+v)", err, first)
	}
	disks, err := armcompute.NewDisksClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	d, err := disks.Get(ctx, "rg1", "os2", nil)
	if err != nil || *d.Properties.DiskState != armcompute.DiskStateActiveUpload {
		t.Fatalf("after the cut-off upload the disk is %v (%v), want ActiveUpload", d.Properties.DiskState, err)
	}
	res, err := transfer.Upload(ctx, src, newTarget(), transfer.Options{Resume: true, Verify: transfer.VerifyFull})
	if err != nil {
		t.Fatalf("resume while ActiveUpload: %v", err)
	}
	if !res.Resumed || res.ResumedBytes == 0 || res.BytesSent >= nonZeroBytes(want) {
		t.Fatalf("resume sent %d of %d bytes (resumed %d)", res.BytesSent, nonZeroBytes(want), res.ResumedBytes)
	}
	d, err = disks.Get(ctx, "rg1", "os2", nil)
	if err != nil || *d.Properties.DiskState != armcompute.DiskStateUnattached {
		t.Fatalf("after the resume the disk is %v (%v): write access not revoked", d.Properties.DiskState, err)
	}
}
