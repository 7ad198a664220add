package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/disk"
	"imgpipe/internal/transfer"
)

func init() { register(newUploadCmd) }

type uploadFlags struct {
	blobURL, account, container, name, endpoint string
	accountKey, connString                      string
	envAccountKey, envConnString                string // from the environment (withEnv)
	diskID, location, sku, hyperVGen            string
	resume, overwrite, md5, noMD5               bool
	workers                                     int
	verify, checkpoint                          string
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
	fl.StringVar(&f.blobURL, "blob", "", "page blob URL, optionally with a SAS query string")
	fl.StringVar(&f.account, "account", "", "storage account name (default $AZURE_STORAGE_ACCOUNT)")
	fl.StringVar(&f.container, "container", "", "blob container")
	fl.StringVar(&f.name, "name", "", "blob name")
	fl.StringVar(&f.endpoint, "blob-endpoint", "", "blob service endpoint (default https://ACCOUNT.blob.core.windows.net, or $IMGPIPE_BLOB_ENDPOINT for the emulator's account)")
	fl.StringVar(&f.accountKey, "account-key", "", "storage account key (prefer AZURE_STORAGE_KEY: flags show in process lists)")
	fl.StringVar(&f.connString, "connection-string", "", "storage connection string (prefer AZURE_STORAGE_CONNECTION_STRING)")
	fl.StringVar(&f.diskID, "disk", "", "managed disk resource id to create and upload into")
	fl.StringVar(&f.location, "location", "", "region for a new managed disk")
	fl.StringVar(&f.sku, "disk-sku", "Standard_LRS", "storage type of a new managed disk")
	fl.StringVar(&f.hyperVGen, "hyperv-generation", "auto", "Hyper-V generation of a new managed disk: V1, V2 or auto (from the partition table)")
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
	f = f.withEnv()
	if f.resume && f.blobURL == "" && f.container == "" && f.name == "" && f.diskID == "" {
		// No target named: continue towards the one the checkpoint records.
		path := f.checkpoint
		if path == "" {
			path = src + transfer.CheckpointSuffix
		}
		cp, err := transfer.LoadCheckpoint(path)
		if err != nil {
			return err
		}
		if cp == nil {
			return fmt.Errorf("nothing to resume: no checkpoint at %s", path)
		}
		switch cp.Target.Kind {
		case "disk":
			f.diskID = cp.Target.DiskID
		default:
			f.blobURL = cp.Target.URL // no SAS is ever stored: a SAS target needs --blob again
		}
	}
	if err := checkLocalEndpoints(f.blobURL, f.endpoint); err != nil {
		return err // Azurite (or the emulator) is not running: no minutes of retries
	}
	tgt, err := uploadTarget(src, f)
	if err != nil {
		return err
	}
	p, finish := newProgressBar("upload", 0)
	res, err := transfer.Upload(cmd.Context(), src, tgt, transfer.Options{
		Workers:    f.workers,
		MD5:        f.md5,
		Resume:     f.resume,
		Overwrite:  f.overwrite,
		Checkpoint: f.checkpoint,
		Verify:     transfer.VerifyMode(f.verify),
		Progress:   p,
		Logger:     slog.Default(),
	})
	finish()
	if err != nil {
		if res != nil && res.Checkpoint != "" && !errors.Is(err, transfer.ErrVerify) && res.BytesSent+res.ResumedBytes > 0 &&
			!strings.HasPrefix(res.Target, "managed disk") {
			err = fmt.Errorf("%w\nthe upload can be continued: run the same command with --resume", err)
		}
		if errors.Is(err, transfer.ErrVerify) {
			return negative(err)
		}
		return err
	}
	if jsonOutput() {
		return printJSON(res)
	}
	w := stdout
	fmt.Fprintf(w, "uploaded %s to %s\n", res.Source, res.Target)
	fmt.Fprintf(w, "  virtual size   %s (%d bytes, fixed VHD)\n", sizeIEC(res.VirtualSize), res.VirtualSize)
	fmt.Fprintf(w, "  data sent      %s in %d ranges (%d retries)\n", sizeIEC(res.BytesSent), res.Ranges, res.Retries)
	if res.Resumed {
		fmt.Fprintf(w, "  resumed        %s already on the target\n", sizeIEC(res.ResumedBytes))
	}
	d := time.Duration(res.Seconds * float64(time.Second)).Round(time.Millisecond)
	rate := ""
	if res.Seconds > 0 {
		rate = fmt.Sprintf(", %s/s", sizeIEC(int64(float64(res.BytesSent)/res.Seconds)))
	}
	fmt.Fprintf(w, "  duration       %s%s\n", d, rate)
	if res.MD5 != "" {
		fmt.Fprintf(w, "  Content-MD5    %s (%s; hashing took %.1fs, %.1fs after the last page)\n", res.MD5, res.MD5Hex, res.MD5Seconds, res.MD5WaitSeconds)
	}
	fmt.Fprintf(w, "  integrity      %s\n", res.Integrity)
	if v := res.Verify; v != nil {
		fmt.Fprintf(w, "  verified       %s: %d page ranges match, %s read back in %d pieces\n", v.Mode, v.PageRanges, sizeIEC(v.ReadBack), v.Samples)
	}
	for _, s := range res.Warnings {
		fmt.Fprintf(w, "  warning: %s\n", s)
	}
	return nil
}

// uploadTarget builds the target the flags describe.
func uploadTarget(src string, f uploadFlags) (transfer.Target, error) {
	n := 0
	for _, set := range []bool{f.blobURL != "", f.name != "" || f.container != "", f.diskID != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("name exactly one target: --blob URL, --container C --name N (with --account or a connection string), or --disk ID")
	}
	if f.diskID != "" {
		// the same connection as publish: custom ARM endpoint, CA bundle,
		// client secret (azure.ConnectionFromEnv), else DefaultAzureCredential
		cred, armOpts, err := azure.ConnectionFromEnv().Open()
		if err != nil {
			return nil, fmt.Errorf("Azure credential for --disk: %w", err)
		}
		gen := f.hyperVGen
		if strings.EqualFold(gen, "auto") {
			gen = ""
			if img, err := disk.Open(src); err == nil {
				if g, err := disk.DetectGeneration(img); err == nil {
					gen = string(g)
				}
				img.Close()
			}
		}
		if gen != "" && gen != "V1" && gen != "V2" {
			return nil, fmt.Errorf("--hyperv-generation %q: use V1, V2 or auto", f.hyperVGen)
		}
		return transfer.NewDiskTarget(f.diskID, cred, armOpts, transfer.DiskOptions{Location: f.location, SKU: f.sku, HyperVGeneration: gen})
	}

	cred, err := f.blobCredential()
	if err != nil {
		return nil, err
	}
	blobURL := f.blobURL
	if blobURL == "" {
		if f.container == "" || f.name == "" {
			return nil, errors.New("--container and --name are both needed")
		}
		switch {
		case cred.ConnectionString != "":
			blobURL = f.container + "/" + f.name // endpoint and account from the connection string
		case f.account == "" && f.endpoint == "":
			return nil, errors.New("--container/--name need --account (or AZURE_STORAGE_ACCOUNT, --blob-endpoint, or a connection string)")
		default:
			ep := strings.TrimRight(f.endpoint, "/")
			if ep == "" {
				ep = "https://" + f.account + ".blob.core.windows.net"
			}
			blobURL = ep + "/" + url.PathEscape(f.container) + "/" + escapeBlobName(f.name)
		}
	}
	u, err := url.Parse(blobURL)
	hasSAS := err == nil && u.Query().Get("sig") != ""
	if hasSAS {
		cred = transfer.BlobCredential{} // the SAS is the credential
	}
	if cred.AccountKey != "" && cred.ConnectionString == "" {
		if cred.AccountName == "" {
			cred.AccountName = accountFromURL(blobURL)
		}
		if cred.AccountName == "" {
			return nil, errors.New("a shared key needs the account name: pass --account or set AZURE_STORAGE_ACCOUNT")
		}
	}
	if cred == (transfer.BlobCredential{}) && !hasSAS {
		tc, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("no SAS, connection string or key given, and no Entra ID credential: %w", err)
		}
		cred.Token = azcore.TokenCredential(tc)
	}
	return transfer.NewBlobTarget(blobURL, cred, transfer.ClientConfig{})
}

// withEnv fills what the flags leave unset from the environment, as az
// reads it: AZURE_STORAGE_CONNECTION_STRING, AZURE_STORAGE_ACCOUNT,
// AZURE_STORAGE_KEY; and the blob endpoint of the emulator's Azurite
// (IMGPIPE_BLOB_ENDPOINT, from emulator.env) for that same account.
func (f uploadFlags) withEnv() uploadFlags {
	f.envConnString = os.Getenv("AZURE_STORAGE_CONNECTION_STRING")
	f.envAccountKey = os.Getenv("AZURE_STORAGE_KEY")
	envAccount := os.Getenv(storageAccountEnv)
	if f.account == "" {
		f.account = envAccount
	}
	if f.endpoint == "" && f.account != "" && strings.EqualFold(f.account, envAccount) {
		f.endpoint = os.Getenv(blobEndpointEnv)
	}
	return f
}

// blobCredential picks the credential in az's order: a connection string,
// then account + key, then Microsoft Entra ID (left to the caller, as the
// zero value). A flag beats the environment at each step.
func (f uploadFlags) blobCredential() (transfer.BlobCredential, error) {
	switch {
	case f.connString != "":
		return transfer.BlobCredential{ConnectionString: f.connString}, nil
	case f.accountKey != "":
		return transfer.BlobCredential{AccountName: f.account, AccountKey: f.accountKey}, nil
	case f.envConnString != "":
		return transfer.BlobCredential{ConnectionString: f.envConnString}, nil
	case f.envAccountKey != "":
		return transfer.BlobCredential{AccountName: f.account, AccountKey: f.envAccountKey}, nil
	}
	return transfer.BlobCredential{}, nil
}

func escapeBlobName(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// accountFromURL finds the account in https://ACCOUNT.blob.../ or, for
// Azurite, http://127.0.0.1:10000/ACCOUNT/...
func accountFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if h, _, ok := strings.Cut(u.Hostname(), ".blob."); ok {
		return h
	}
	if first, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/"); first != "" {
		return first
	}
	return ""
}
