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
		Long: `Upload streams SOURCE (VHDX, VHD or raw) to Azure as the fixed VHD Azure requires,
without ever writing that VHD to disk: the virtual size is padded to a whole
MiB and the 512-byte footer is appended on the fly.

Only data is sent. The allocation map (VHDX/VHD block tables, the file
system's holes for raw and fixed files) says where data may be, and within
it every 512-byte sector that is all zeros is skipped too. The remaining
ranges (at most 4 MiB, one Put Page each) go out through --workers parallel
connections, retried on throttling (429), server errors and dropped
connections.

Resuming: a checkpoint next to SOURCE (SOURCE.imgpipe-upload.json, or
--checkpoint) records the target, the source's fingerprint and the ranges
already on the target, each made durable before the next one is started.
After a crash or kill, run the same command with --resume (or just
"imgpipe upload SOURCE --resume": the target is read from the checkpoint, the
credentials from the environment; a SAS URL must be given again with --blob,
as it is never stored): only the missing ranges are sent. A source or target that changed meanwhile is refused. The
checkpoint never contains a SAS token or key, and is deleted on success.

Integrity: every Put Page carries the CRC64 of its body (x-ms-content-crc64);
the service recomputes it and refuses pages damaged on the way, which are
sent again. That costs time in proportion to the data, not the virtual size.
--md5 also hashes the whole fixed VHD (zeros included: a 127 GiB disk costs
minutes) and sets it as the blob's Content-MD5, as Add-AzVhd does; Azure
stores it but never checks a page blob against it. --verify compares Get Page
Ranges with the source's data ranges and reads back a sample (--verify,
--verify=sampled) or all the data (--verify=full). The summary (and -o json,
"integrity") says which of these checks ran.

Targets and credentials:
  --blob URL                    a page blob URL; with a SAS query string no other
                                credential is needed
  --account A --container C --name N
                                the blob CONTAINER/NAME in storage account A
                                (--blob-endpoint for Azurite or other clouds)
  --connection-string / AZURE_STORAGE_CONNECTION_STRING  (with --container, --name)
  --account-key / AZURE_STORAGE_KEY                       shared key for --account
  otherwise                     Microsoft Entra ID through DefaultAzureCredential
                                (environment, workload identity, managed identity,
                                Azure CLI login)
  --disk ID                     a managed disk, created for direct upload with the
                                exact size (--location, --disk-sku); the Hyper-V
                                generation is detected from the partition table
                                unless --hyperv-generation is given. Write access
                                is revoked at the end, also after a failure.

Exit status: 0 uploaded (and verified), 1 error, 3 verification found a difference.`,
		Example: `  # SAS URL (quote it: it contains '&')
  imgpipe upload build/image.vhdx --blob 'https://acct.blob.core.windows.net/vhds/image.vhd?sv=...&sig=...'

  # storage account with your Entra ID login, verified, JSON summary
  imgpipe upload build/image.vhdx --account acct --container vhds --name image-1.4.0.vhd --verify -o json

  # Azurite (development account; its well-known key in AZURE_STORAGE_KEY)
  imgpipe upload image.vhdx --account devstoreaccount1 \
    --blob-endpoint http://127.0.0.1:10000/devstoreaccount1 --container vhds --name image.vhd

  # managed disk, direct upload
  imgpipe upload image.vhdx --disk /subscriptions/SUB/resourceGroups/rg/providers/Microsoft.Compute/disks/img-os --location westeurope

  # after an interruption (the target is taken from the checkpoint; a SAS URL must be given again)
  imgpipe upload build/image.vhdx --resume`,
		Args: cobra.ExactArgs(1),
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
