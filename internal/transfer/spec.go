package transfer

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"imgpipe/internal/disk"
	"imgpipe/internal/units"
)

// TargetSpec names an upload target as a user does (imgpipe upload's flags
// and the environment az reads); Target turns it into a Target.
type TargetSpec struct {
	BlobURL                      string // a page blob URL, optionally with a SAS
	Account, Container, Name     string
	Endpoint                     string // blob service endpoint (default https://ACCOUNT.blob.core.windows.net)
	AccountKey, ConnectionString string // given explicitly (flags)

	DiskID, Location, SKU string // a managed disk for direct upload
	HyperVGeneration      string // V1, V2, or "auto"/"" (from the partition table)
	// ARM opens the ARM credential for DiskID (the same connection as publish).
	ARM func() (azcore.TokenCredential, *arm.ClientOptions, error)

	env StorageEnv
}

// StorageEnv is what the environment says about storage, as az reads it.
type StorageEnv struct {
	ConnectionString string // AZURE_STORAGE_CONNECTION_STRING
	AccountKey       string // AZURE_STORAGE_KEY
	Account          string // AZURE_STORAGE_ACCOUNT
	// EmulatorEndpoint is the blob endpoint of the emulator's Azurite
	// (IMGPIPE_BLOB_ENDPOINT, from emulator.env): the endpoint for
	// Account when no other is given.
	EmulatorEndpoint string
}

// WithEnv fills what s leaves unset from env: the account, and the
// emulator's endpoint for that same account; the connection string and key
// come after the explicit ones (Credential).
func (s TargetSpec) WithEnv(env StorageEnv) TargetSpec {
	s.env = env
	if s.Account == "" {
		s.Account = env.Account
	}
	if s.Endpoint == "" && s.Account != "" && strings.EqualFold(s.Account, env.Account) {
		s.Endpoint = env.EmulatorEndpoint
	}
	return s
}

// Named reports whether s names a target (not just credentials).
func (s TargetSpec) Named() bool {
	return s.BlobURL != "" || s.Container != "" || s.Name != "" || s.DiskID != ""
}

// FromCheckpoint names the target the checkpoint at path records (a resumed
// upload given no target). A SAS is never stored: a SAS target needs its
// URL again.
func (s TargetSpec) FromCheckpoint(path string) (TargetSpec, error) {
	cp, err := LoadCheckpoint(path)
	if err != nil {
		return s, err
	}
	if cp == nil {
		return s, fmt.Errorf("nothing to resume: no checkpoint at %s", path)
	}
	if cp.Target.Kind == "disk" {
		s.DiskID = cp.Target.DiskID
	} else {
		s.BlobURL = cp.Target.URL
	}
	return s, nil
}

// Credential picks the blob credential in az's order: a connection string,
// then account + key, then Microsoft Entra ID (the zero value: Target asks
// DefaultAzureCredential). An explicit value beats the environment at each step.
func (s TargetSpec) Credential() BlobCredential {
	switch {
	case s.ConnectionString != "":
		return BlobCredential{ConnectionString: s.ConnectionString}
	case s.AccountKey != "":
		return BlobCredential{AccountName: s.Account, AccountKey: s.AccountKey}
	case s.env.ConnectionString != "":
		return BlobCredential{ConnectionString: s.env.ConnectionString}
	case s.env.AccountKey != "":
		return BlobCredential{AccountName: s.Account, AccountKey: s.env.AccountKey}
	}
	return BlobCredential{}
}

// Target builds the target s names, for uploading src.
func (s TargetSpec) Target(src string) (Target, error) {
	n := 0
	for _, set := range []bool{s.BlobURL != "", s.Name != "" || s.Container != "", s.DiskID != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return nil, errors.New("name exactly one target: --blob URL, --container C --name N (with --account or a connection string), or --disk ID")
	}
	if s.DiskID != "" {
		return s.diskTarget(src)
	}
	cred := s.Credential()
	blobURL, err := s.blobURL(cred)
	if err != nil {
		return nil, err
	}
	u, err := url.Parse(blobURL)
	hasSAS := err == nil && u.Query().Get("sig") != ""
	if hasSAS {
		cred = BlobCredential{} // the SAS is the credential
	}
	if cred.AccountKey != "" && cred.ConnectionString == "" {
		if cred.AccountName == "" {
			cred.AccountName = AccountFromURL(blobURL)
		}
		if cred.AccountName == "" {
			return nil, errors.New("a shared key needs the account name: pass --account or set AZURE_STORAGE_ACCOUNT")
		}
	}
	if cred == (BlobCredential{}) && !hasSAS {
		tc, err := azidentity.NewDefaultAzureCredential(nil)
		if err != nil {
			return nil, fmt.Errorf("no SAS, connection string or key given, and no Entra ID credential: %w", err)
		}
		cred.Token = tc
	}
	return NewBlobTarget(blobURL, cred, ClientConfig{})
}

func (s TargetSpec) blobURL(cred BlobCredential) (string, error) {
	if s.BlobURL != "" {
		return s.BlobURL, nil
	}
	if s.Container == "" || s.Name == "" {
		return "", errors.New("--container and --name are both needed")
	}
	switch {
	case cred.ConnectionString != "":
		return s.Container + "/" + s.Name, nil // endpoint and account from the connection string
	case s.Account == "" && s.Endpoint == "":
		return "", errors.New("--container/--name need --account (or AZURE_STORAGE_ACCOUNT, --blob-endpoint, or a connection string)")
	}
	ep := strings.TrimRight(s.Endpoint, "/")
	if ep == "" {
		ep = "https://" + s.Account + ".blob.core.windows.net"
	}
	parts := strings.Split(s.Name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return ep + "/" + url.PathEscape(s.Container) + "/" + strings.Join(parts, "/"), nil
}

func (s TargetSpec) diskTarget(src string) (Target, error) {
	if s.ARM == nil {
		return nil, errors.New("internal error: no ARM credential for --disk")
	}
	cred, armOpts, err := s.ARM()
	if err != nil {
		return nil, fmt.Errorf("Azure credential for --disk: %w", err)
	}
	gen := s.HyperVGeneration
	if gen == "" || strings.EqualFold(gen, "auto") {
		gen = ""
		if img, err := disk.Open(src); err == nil {
			if g, err := disk.DetectGeneration(img); err == nil {
				gen = string(g)
			}
			img.Close()
		}
	}
	if gen != "" && gen != "V1" && gen != "V2" {
		return nil, fmt.Errorf("--hyperv-generation %q: use V1, V2 or auto", s.HyperVGeneration)
	}
	return NewDiskTarget(s.DiskID, cred, armOpts, DiskOptions{Location: s.Location, SKU: s.SKU, HyperVGeneration: gen})
}

// AccountFromURL finds the account in https://ACCOUNT.blob.../ or, for
// Azurite, http://127.0.0.1:10000/ACCOUNT/...
func AccountFromURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	if h, _, ok := strings.Cut(u.Hostname(), ".blob."); ok {
		return h
	}
	first, _, _ := strings.Cut(strings.TrimPrefix(u.Path, "/"), "/")
	return first
}

// Summary renders the result as the lines imgpipe upload prints.
func (r *Result) Summary() []string {
	out := []string{
		fmt.Sprintf("uploaded %s to %s", r.Source, r.Target),
		fmt.Sprintf("  virtual size   %s (%d bytes, fixed VHD)", units.IEC(r.VirtualSize), r.VirtualSize),
		fmt.Sprintf("  data sent      %s in %d ranges (%d retries)", units.IEC(r.BytesSent), r.Ranges, r.Retries),
	}
	if r.Resumed {
		out = append(out, fmt.Sprintf("  resumed        %s already on the target", units.IEC(r.ResumedBytes)))
	}
	d := time.Duration(r.Seconds * float64(time.Second)).Round(time.Millisecond)
	rate := ""
	if r.Seconds > 0 {
		rate = fmt.Sprintf(", %s/s", units.IEC(int64(float64(r.BytesSent)/r.Seconds)))
	}
	out = append(out, fmt.Sprintf("  duration       %s%s", d, rate))
	if r.MD5 != "" {
		out = append(out, fmt.Sprintf("  Content-MD5    %s (%s; hashing took %.1fs, %.1fs after the last page)", r.MD5, r.MD5Hex, r.MD5Seconds, r.MD5WaitSeconds))
	}
	out = append(out, fmt.Sprintf("  integrity      %s", r.Integrity))
	if v := r.Verify; v != nil {
		out = append(out, fmt.Sprintf("  verified       %s: %d page ranges match, %s read back in %d pieces", v.Mode, v.PageRanges, units.IEC(v.ReadBack), v.Samples))
	}
	for _, s := range r.Warnings {
		out = append(out, "  warning: "+s)
	}
	return out
}

// Resumable reports whether a failed upload can be continued with --resume
// (a blob upload that got some data across; not a verification failure).
func (r *Result) Resumable(err error) bool {
	return err != nil && r != nil && r.Checkpoint != "" && !errors.Is(err, ErrVerify) && r.BytesSent+r.ResumedBytes > 0 &&
		!strings.HasPrefix(r.Target, "managed disk")
}
