package main

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/transfer"
)

func init() { register(newUploadCmd) }

type uploadFlags struct {
	spec                          transfer.TargetSpec
	resume, overwrite, md5, noMD5 bool
	workers                       int
	verify, checkpoint            string
}

func newUploadCmd() *cobra.Command {
	var f uploadFlags
	c := &cobra.Command{
		Use:   "upload SOURCE (--blob URL | --account NAME --container C --name N | --disk ID)",
		Short: "Upload a disk image to an Azure page blob or managed disk, sending only its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUpload(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.StringVar(&f.spec.BlobURL, "blob", "", "page blob URL, optionally with a SAS query string")
	fl.StringVar(&f.spec.Account, "account", "", "storage account name (default $AZURE_STORAGE_ACCOUNT)")
	fl.StringVar(&f.spec.Container, "container", "", "blob container")
	fl.StringVar(&f.spec.Name, "name", "", "blob name")
	fl.StringVar(&f.spec.Endpoint, "blob-endpoint", "", "blob service endpoint (default https://ACCOUNT.blob.core.windows.net, or $IMGPIPE_BLOB_ENDPOINT for the emulator's account)")
	fl.StringVar(&f.spec.AccountKey, "account-key", "", "storage account key (prefer AZURE_STORAGE_KEY: flags show in process lists)")
	fl.StringVar(&f.spec.ConnectionString, "connection-string", "", "storage connection string (prefer AZURE_STORAGE_CONNECTION_STRING)")
	fl.StringVar(&f.spec.DiskID, "disk", "", "managed disk resource id to create and upload into")
	fl.StringVar(&f.spec.Location, "location", "", "region for a new managed disk")
	fl.StringVar(&f.spec.SKU, "disk-sku", "Standard_LRS", "storage type of a new managed disk")
	fl.StringVar(&f.spec.HyperVGeneration, "hyperv-generation", "auto", "Hyper-V generation of a new managed disk: V1, V2 or auto (from the partition table)")
	fl.BoolVar(&f.resume, "resume", false, "continue an interrupted upload from its checkpoint")
	fl.BoolVar(&f.overwrite, "overwrite", false, "replace an existing page blob and discard an old checkpoint")
	fl.BoolVar(&f.md5, "md5", false, "also hash the whole fixed VHD (O(virtual size)) and set it as the blob's Content-MD5")
	fl.BoolVar(&f.noMD5, "no-md5", false, "no Content-MD5 (the default now)")
	_ = fl.MarkDeprecated("no-md5", "Content-MD5 is off unless --md5 is given")
	fl.IntVar(&f.workers, "workers", transfer.DefaultWorkers, "parallel Put Page requests")
	fl.StringVar(&f.verify, "verify", "", "after the upload, compare page ranges and read back a sample (sampled) or all data (full)")
	fl.Lookup("verify").NoOptDefVal = string(transfer.VerifySampled)
	fl.StringVar(&f.checkpoint, "checkpoint", "", "checkpoint file (default SOURCE"+transfer.CheckpointSuffix+")")
	return c
}

func runUpload(cmd *cobra.Command, src string, f uploadFlags) error {
	spec := f.spec.WithEnv(transfer.StorageEnv{ConnectionString: os.Getenv("AZURE_STORAGE_CONNECTION_STRING"),
		AccountKey: os.Getenv("AZURE_STORAGE_KEY"), Account: os.Getenv(storageAccountEnv), EmulatorEndpoint: os.Getenv(blobEndpointEnv)})
	// the same ARM connection as publish (custom endpoint, CA bundle, client secret)
	spec.ARM = func() (azcore.TokenCredential, *arm.ClientOptions, error) { return azure.ConnectionFromEnv().Open() }
	if f.resume && !spec.Named() {
		// No target named: continue towards the one the checkpoint records.
		var err error
		if spec, err = spec.FromCheckpoint(cmp.Or(f.checkpoint, src+transfer.CheckpointSuffix)); err != nil {
			return err
		}
	}
	if err := checkLocalEndpoints(spec.BlobURL, spec.Endpoint); err != nil {
		return err // Azurite (or the emulator) is not running: no minutes of retries
	}
	tgt, err := spec.Target(src)
	if err != nil {
		return err
	}
	p, finish := newProgressBar("upload", 0)
	res, err := transfer.Upload(cmd.Context(), src, tgt, transfer.Options{Workers: f.workers, MD5: f.md5, Resume: f.resume, Overwrite: f.overwrite,
		Checkpoint: f.checkpoint, Verify: transfer.VerifyMode(f.verify), Progress: p, Logger: slog.Default()})
	finish()
	switch {
	case errors.Is(err, transfer.ErrVerify):
		return negative(err)
	case res.Resumable(err):
		return fmt.Errorf("%w\nthe upload can be continued: run the same command with --resume", err)
	case err != nil:
		return err
	case jsonOutput():
		return printJSON(res)
	}
	fmt.Fprintln(stdout, strings.Join(res.Summary(), "\n"))
	return nil
}
