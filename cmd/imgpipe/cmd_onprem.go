package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/onprem"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newOnpremCmd) }

func newOnpremCmd() *cobra.Command {
	c := &cobra.Command{Use: "onprem", Short: "Manage the on-premises Hyper-V image library (add, list, verify, promote, deploy)"}
	c.AddCommand(newOnpremAddCmd(), newOnpremListCmd(), newOnpremVerifyCmd(), newOnpremPromoteCmd(),
		newOnpremRevokeCmd(), newOnpremDeployScriptCmd())
	return c
}

func addLibraryFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "library", os.Getenv(onprem.LibraryEnv), "library folder (local path or mounted SMB share; default $"+onprem.LibraryEnv+")")
}

// libraryVerb is a verb run on the library --library names.
func libraryVerb(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, args []string, lib *onprem.Library) error) *cobra.Command {
	var path string
	c := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
		lib, err := onprem.OpenLibrary(path)
		if err != nil {
			return err
		}
		return run(cmd, args, lib)
	}}
	addLibraryFlag(c, &path)
	return c
}

func newOnpremAddCmd() *cobra.Command {
	var r pipeline.LibraryAddRequest
	c := &cobra.Command{Use: "add [FILE]", Short: "Copy a disk image into the library as a new version",
		Args: cobra.MaximumNArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			r.Path = strings.Join(args, "")
			// the catalog (when one is configured) records the copy, so promote accepts it
			return withCatalog(cmd, ifPresent, func(cat *catalog.Catalog) error {
				var done func()
				r.Step, done = progressView().Steps()
				a, err := pipeline.AddLibraryDisk(cmd.Context(), cat, r)
				done()
				if err != nil {
					return err
				}
				return view.LibraryAdd(stdout, jsonOutput(), a, r.Channels)
			})
		}}
	f := c.Flags()
	addLibraryFlag(c, &r.Library)
	f.StringVar(&r.Image, "image", "", "image name (required)")
	f.StringVar(&r.Version, "version", "", "version name (required; immutable once added)")
	f.StringArrayVar(&r.Channels, "channel", nil, "channel to point at this version (repeatable), e.g. test")
	f.StringVar(&r.Format, "format", "vhdx", "stored format: vhdx (convert if needed) or keep (store the input format)")
	f.StringVar(&r.Generation, "generation", "", "Hyper-V generation V1 or V2, when the partition table does not tell")
	f.StringVar(&r.OS, "os", "", "guest OS: linux or windows (default linux, or the manifest's custom_data os)")
	f.StringVar(&r.Manifest, "manifest", "", "take the disk from this Packer manifest's last run instead of FILE")
	f.StringVar(&r.SourceFingerprint, "source-fingerprint", "", "identity of the source (default: the SHA-256 of the input, plus the Packer run id with --manifest)")
	f.BoolVar(&r.KeepLatest, "keep-latest", false, "do not move latest to this version")
	f.String("catalog", "", "also record the version and the library copy in this catalog (default: $"+catalogEnv+", else the per-user catalog if it exists), so promote accepts it")
	c.MarkFlagRequired("image")
	c.MarkFlagRequired("version")
	return c
}

func newOnpremListCmd() *cobra.Command {
	return libraryVerb("list", "List the images, versions and channels in the library", cobra.NoArgs,
		func(cmd *cobra.Command, args []string, lib *onprem.Library) error {
			infos, err := lib.List()
			if err != nil {
				return err
			}
			return view.LibraryImages(stdout, jsonOutput(), infos)
		})
}

func newOnpremVerifyCmd() *cobra.Command {
	return libraryVerb("verify [IMAGE [VERSION]]", "Re-read library disks and check them against their recorded SHA-256", cobra.MaximumNArgs(2),
		func(cmd *cobra.Command, args []string, lib *onprem.Library) error {
			args = append(args, "", "")
			step, done := progressView().Steps()
			results, err := lib.VerifyAll(cmd.Context(), args[0], args[1], step)
			done()
			if err == nil {
				err = draw(results, results.Text())
			}
			if err == nil && results.Err() != nil {
				return negative(results.Err())
			}
			return err
		})
}

func newOnpremPromoteCmd() *cobra.Command {
	var channels []string
	c := libraryVerb("promote IMAGE VERSION --channel CHANNEL", "Point a channel (e.g. prod) at an existing version", cobra.ExactArgs(2),
		func(cmd *cobra.Command, args []string, lib *onprem.Library) error {
			if err := lib.SetChannels(args[0], args[1], channels); err != nil {
				return err
			}
			return draw(map[string]any{"image": args[0], "version": args[1], "channels": channels}, view.LibraryChannels(args[0], args[1], channels))
		})
	c.Flags().StringArrayVar(&channels, "channel", nil, "channel to point at VERSION (repeatable)")
	return c
}

func newOnpremRevokeCmd() *cobra.Command {
	var reason string
	c := libraryVerb("revoke IMAGE VERSION --reason TEXT", "Mark a version as revoked so it is no longer deployed or promoted", cobra.ExactArgs(2),
		func(cmd *cobra.Command, args []string, lib *onprem.Library) error {
			md, err := lib.Revoke(args[0], args[1], reason)
			if err != nil {
				return err
			}
			return draw(md, fmt.Sprintf("%s %s revoked: %s\n", md.Image, md.Version, md.RevokedReason))
		})
	c.Flags().StringVar(&reason, "reason", "", "why (required; shown to whoever tries to deploy it)")
	return c
}

func newOnpremDeployScriptCmd() *cobra.Command {
	var memory string
	var o onprem.DeployOptions
	c := libraryVerb("deploy-script IMAGE VERSION|CHANNEL", "Print the PowerShell that creates a Hyper-V VM from a library version", cobra.ExactArgs(2),
		func(cmd *cobra.Command, args []string, lib *onprem.Library) (err error) {
			if o.MemoryBytes, err = onprem.ParseMemorySize(memory); err != nil {
				return err
			}
			script, err := lib.DeployScriptFor(args[0], args[1], o)
			if err != nil {
				return err
			}
			return view.Write(stdout, false, nil, script)
		})
	f := c.Flags()
	f.StringVar(&o.VMName, "vm-name", "", "VM name (default IMAGE-VERSION)")
	f.StringVar(&o.Switch, "switch", "", "virtual switch to connect the network adapter to")
	f.StringVar(&memory, "memory", "2GB", "startup memory: bytes, or with MB/GB (binary units, as Hyper-V)")
	f.IntVar(&o.CPUs, "cpus", 2, "virtual processors")
	f.StringVar(&o.HostLibraryPath, "host-path", "", `library path as the Hyper-V host sees it, e.g. \\fs01\images (default: --library)`)
	f.StringVar(&o.DiskDirectory, "disk-dir", "", "folder for the VM's differencing disk on the host (default: the host's VirtualHardDiskPath)")
	f.BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "leave out the SHA-256 check of the parent disk (it reads the whole disk)")
	return c
}
