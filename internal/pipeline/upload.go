package pipeline

// imgpipe upload: one disk to a page blob or managed disk, reached as the
// environment says (the same ARM connection as publish: custom endpoint,
// CA bundle, client secret; storage key or connection string).

import (
	"cmp"
	"context"
	"fmt"
	"os"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"

	"imgpipe/internal/azure"
	"imgpipe/internal/emulatorenv"
	"imgpipe/internal/transfer"
)

// Upload sends src to the target spec names (completed from the
// environment; with o.Resume and no target named, the one the checkpoint
// records). A failure the checkpoint can continue says so; a verification
// difference wraps transfer.ErrVerify.
func Upload(ctx context.Context, src string, spec transfer.TargetSpec, o transfer.Options) (*transfer.Result, error) {
	spec = spec.WithEnv(transfer.StorageEnv{ConnectionString: os.Getenv("AZURE_STORAGE_CONNECTION_STRING"),
		AccountKey: os.Getenv(azure.EnvStorageKey), Account: os.Getenv(emulatorenv.EnvStorageAccount), EmulatorEndpoint: os.Getenv(emulatorenv.EnvBlobEndpoint)})
	spec.ARM = func() (azcore.TokenCredential, *arm.ClientOptions, error) { return azure.ConnectionFromEnv().Open() }
	if o.Resume && !spec.Named() {
		// No target named: continue towards the one the checkpoint records.
		var err error
		if spec, err = spec.FromCheckpoint(cmp.Or(o.Checkpoint, src+transfer.CheckpointSuffix)); err != nil {
			return nil, err
		}
	}
	if err := emulatorenv.CheckEndpoints(spec.BlobURL, spec.Endpoint); err != nil {
		return nil, err // Azurite (or the emulator) is not running: no minutes of retries
	}
	tgt, err := spec.Target(src)
	if err != nil {
		return nil, err
	}
	res, err := transfer.Upload(ctx, src, tgt, o)
	if res.Resumable(err) {
		return res, fmt.Errorf("%w\nthe upload can be continued: run the same command with --resume", err)
	}
	return res, err
}
