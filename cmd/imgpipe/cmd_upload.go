package main

import (
	"log/slog"

	"github.com/spf13/cobra"

	"imgpipe/internal/pipeline"
	"imgpipe/internal/transfer"
	"imgpipe/internal/view"
)

func init() { register(newUploadCmd) }

func newUploadCmd() *cobra.Command {
	var (
		spec  transfer.TargetSpec
		o     transfer.Options
		noMD5 bool
	)
	c := &cobra.Command{
		Use:   "upload SOURCE (--blob URL | --account NAME --container C --name N | --disk ID)",
		Short: "Upload a disk image to an Azure page blob or managed disk, sending only its data",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var finish func()
			o.Progress, finish = newProgressBar("upload", 0)
			o.Logger = slog.Default()
			res, err := pipeline.Upload(cmd.Context(), args[0], spec, o)
			finish()
			if err != nil {
				return err // a verification difference is exit status 2 (exit.go)
			}
			return view.Uploaded(stdout, jsonOutput(), res)
		},
	}
	fl := c.Flags()
	fl.StringVar(&spec.BlobURL, "blob", "", "page blob URL, optionally with a SAS query string")
	fl.StringVar(&spec.Account, "account", "", "storage account name (default $AZURE_STORAGE_ACCOUNT)")
	fl.StringVar(&spec.Container, "container", "", "blob container")
	fl.StringVar(&spec.Name, "name", "", "blob name")
	fl.StringVar(&spec.Endpoint, "blob-endpoint", "", "blob service endpoint (default https://ACCOUNT.blob.core.windows.net, or $IMGPIPE_BLOB_ENDPOINT for the emulator's account)")
	fl.StringVar(&spec.AccountKey, "account-key", "", "storage account key (prefer AZURE_STORAGE_KEY: flags show in process lists)")
	fl.StringVar(&spec.ConnectionString, "connection-string", "", "storage connection string (prefer AZURE_STORAGE_CONNECTION_STRING)")
	fl.StringVar(&spec.DiskID, "disk", "", "managed disk resource id to create and upload into")
	fl.StringVar(&spec.Location, "location", "", "region for a new managed disk")
	fl.StringVar(&spec.SKU, "disk-sku", "Standard_LRS", "storage type of a new managed disk")
	fl.StringVar(&spec.HyperVGeneration, "hyperv-generation", "auto", "Hyper-V generation of a new managed disk: V1, V2 or auto (from the partition table)")
	fl.BoolVar(&o.Resume, "resume", false, "continue an interrupted upload from its checkpoint")
	fl.BoolVar(&o.Overwrite, "overwrite", false, "replace an existing page blob and discard an old checkpoint")
	fl.BoolVar(&o.MD5, "md5", false, "also hash the whole fixed VHD (O(virtual size)) and set it as the blob's Content-MD5")
	fl.BoolVar(&noMD5, "no-md5", false, "no Content-MD5 (the default now)")
	_ = fl.MarkDeprecated("no-md5", "Content-MD5 is off unless --md5 is given")
	fl.IntVar(&o.Workers, "workers", transfer.DefaultWorkers, "parallel Put Page requests")
	fl.StringVar((*string)(&o.Verify), "verify", "", "after the upload, compare page ranges and read back a sample (sampled) or all data (full)")
	fl.Lookup("verify").NoOptDefVal = string(transfer.VerifySampled)
	fl.StringVar(&o.Checkpoint, "checkpoint", "", "checkpoint file (default SOURCE"+transfer.CheckpointSuffix+")")
	return c
}
