package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/progress"
)

func init() { register(newOnpremCmd) }

func newOnpremCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "onprem",
		Short: "Manage the on-premises Hyper-V image library (add, list, verify, promote, deploy)",
	}
	c.AddCommand(newOnpremAddCmd(), newOnpremListCmd(), newOnpremVerifyCmd(), newOnpremPromoteCmd(),
		newOnpremRevokeCmd(), newOnpremDeployScriptCmd())
	return c
}

func addLibraryFlag(c *cobra.Command, p *string) {
	c.Flags().StringVar(p, "library", os.Getenv("IMGPIPE_LIBRARY"), "library folder (local path or mounted SMB share; default $IMGPIPE_LIBRARY)")
}

// onLibrary opens the library at path (--library) and runs f with it.
func onLibrary(path string, f func(*onprem.Library) error) error {
	if path == "" {
		return errors.New("no library given: pass --library DIR or set IMGPIPE_LIBRARY")
	}
	lib, err := onprem.Open(path)
	if err != nil {
		return err
	}
	return f(lib)
}

type onpremAddFlags struct {
	library, image, version, format, generation, osName, manifest, fingerprint, catalog string
	channels                                                                            []string
	keepLatest                                                                          bool
}

func newOnpremAddCmd() *cobra.Command {
	var f onpremAddFlags
	c := &cobra.Command{
		Use:   "add [FILE]",
		Short: "Copy a disk image into the library as a new version",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runOnpremAdd(cmd, args, f)
		},
	}
	addLibraryFlag(c, &f.library)
	c.Flags().StringVar(&f.image, "image", "", "image name (required)")
	c.Flags().StringVar(&f.version, "version", "", "version name (required; immutable once added)")
	c.Flags().StringArrayVar(&f.channels, "channel", nil, "channel to point at this version (repeatable), e.g. test")
	c.Flags().StringVar(&f.format, "format", "vhdx", "stored format: vhdx (convert if needed) or keep (store the input format)")
	c.Flags().StringVar(&f.generation, "generation", "", "Hyper-V generation V1 or V2, when the partition table does not tell")
	c.Flags().StringVar(&f.osName, "os", "", "guest OS: linux or windows (default linux, or the manifest's custom_data os)")
	c.Flags().StringVar(&f.manifest, "manifest", "", "take the disk from this Packer manifest's last run instead of FILE")
	c.Flags().StringVar(&f.fingerprint, "source-fingerprint", "", "identity of the source (default: the SHA-256 of the input, plus the Packer run id with --manifest)")
	c.Flags().BoolVar(&f.keepLatest, "keep-latest", false, "do not move latest to this version")
	c.Flags().StringVar(&f.catalog, "catalog", "", "also record the version and the library copy in this catalog (default: $"+catalogEnv+", else the per-user catalog if it exists), so promote accepts it")
	c.MarkFlagRequired("image")
	c.MarkFlagRequired("version")
	return c
}

func runOnpremAdd(cmd *cobra.Command, args []string, f onpremAddFlags) error {
	if f.format != "vhdx" && f.format != "keep" {
		return fmt.Errorf("--format %q: use vhdx or keep", f.format)
	}
	// the catalog (when one is configured) records the copy, so promote accepts it
	return withCatalog(cmd, ifPresent, func(cat *catalog.Catalog) error {
		return onLibrary(f.library, func(lib *onprem.Library) error {
			step, finish := stepBars()
			res, info, err := onprem.AddDisk(cmd.Context(), lib, onprem.DiskRequest{
				Path: strings.Join(args, ""), Manifest: f.manifest, Image: f.image, Version: f.version, Channels: f.channels,
				Keep: f.format == "keep", Generation: f.generation, OS: f.osName, SourceFingerprint: f.fingerprint, KeepLatest: f.keepLatest, Step: step,
			})
			finish()
			if err != nil {
				return err
			}
			note := ""
			if cat != nil {
				img := &config.Image{Name: f.image, OSType: onprem.OSType(res.Metadata.OS), HyperVGeneration: info.Generation}
				if _, verr := catalog.ParseVersion(f.version); verr != nil {
					// library versions are free names; catalog versions are MAJOR.MINOR.PATCH
					note = fmt.Sprintf("  not recorded in the catalog %s: %v\n", cat.Location(), verr)
				} else if err := pipeline.RecordLibraryAdd(cmd.Context(), cat, img, f.version, info, lib.Root(), res); err != nil {
					return fmt.Errorf("the disk is in the library, but recording it in the catalog %s failed: %w (run the same add again: it is a no-op for the library)", cat.Location(), err)
				} else {
					note = "  recorded in catalog " + cat.Location() + "\n"
				}
			}
			return draw(res, res.Text(f.channels)+note)
		})
	})
}

func newOnpremListCmd() *cobra.Command {
	var library string
	c := &cobra.Command{
		Use:   "list",
		Short: "List the images, versions and channels in the library",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return onLibrary(library, func(lib *onprem.Library) error {
				infos, err := lib.List()
				switch {
				case err != nil:
					return err
				case jsonOutput() && infos == nil:
					return printJSON([]onprem.ImageInfo{})
				case jsonOutput():
					return printJSON(infos)
				}
				return printTable(onprem.ListHeader, onprem.ListRows(infos))
			})
		},
	}
	addLibraryFlag(c, &library)
	return c
}

func newOnpremVerifyCmd() *cobra.Command {
	var library string
	c := &cobra.Command{
		Use:   "verify [IMAGE [VERSION]]",
		Short: "Re-read library disks and check them against their recorded SHA-256",
		Args:  cobra.MaximumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			args = append(args, "", "")
			return onLibrary(library, func(lib *onprem.Library) error {
				step, finish := stepBars()
				results, err := lib.VerifyAll(cmd.Context(), args[0], args[1], step)
				finish()
				if err == nil {
					err = draw(results, results.Text())
				}
				if err == nil && results.Err() != nil {
					return negative(results.Err())
				}
				return err
			})
		},
	}
	addLibraryFlag(c, &library)
	return c
}

func newOnpremPromoteCmd() *cobra.Command {
	var library string
	var channels []string
	c := &cobra.Command{
		Use:   "promote IMAGE VERSION --channel CHANNEL",
		Short: "Point a channel (e.g. prod) at an existing version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(channels) == 0 {
				return errors.New("give the channel to point at the version: --channel prod")
			}
			return onLibrary(library, func(lib *onprem.Library) error {
				for _, ch := range channels {
					if err := lib.SetChannel(args[0], args[1], ch); err != nil {
						return err
					}
					fmt.Fprintf(stdout, "%s channel %s -> %s\n", args[0], ch, args[1])
				}
				return nil
			})
		},
	}
	addLibraryFlag(c, &library)
	c.Flags().StringArrayVar(&channels, "channel", nil, "channel to point at VERSION (repeatable)")
	return c
}

func newOnpremRevokeCmd() *cobra.Command {
	var library, reason string
	c := &cobra.Command{
		Use:   "revoke IMAGE VERSION --reason TEXT",
		Short: "Mark a version as revoked so it is no longer deployed or promoted",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return onLibrary(library, func(lib *onprem.Library) error {
				md, err := lib.Revoke(args[0], args[1], reason)
				if err != nil {
					return err
				}
				return draw(md, fmt.Sprintf("%s %s revoked: %s\n", md.Image, md.Version, md.RevokedReason))
			})
		},
	}
	addLibraryFlag(c, &library)
	c.Flags().StringVar(&reason, "reason", "", "why (required; shown to whoever tries to deploy it)")
	return c
}

func newOnpremDeployScriptCmd() *cobra.Command {
	var library, memory string
	var o onprem.DeployOptions
	c := &cobra.Command{
		Use:   "deploy-script IMAGE VERSION|CHANNEL",
		Short: "Print the PowerShell that creates a Hyper-V VM from a library version",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var err error
			if o.MemoryBytes, err = onprem.ParseMemorySize(memory); err != nil {
				return err
			}
			return onLibrary(library, func(lib *onprem.Library) error {
				script, err := lib.DeployScriptFor(args[0], args[1], o)
				if err != nil {
					return err
				}
				return printText(script)
			})
		},
	}
	addLibraryFlag(c, &library)
	c.Flags().StringVar(&o.VMName, "vm-name", "", "VM name (default IMAGE-VERSION)")
	c.Flags().StringVar(&o.Switch, "switch", "", "virtual switch to connect the network adapter to")
	c.Flags().StringVar(&memory, "memory", "2GB", "startup memory: bytes, or with MB/GB (binary units, as Hyper-V)")
	c.Flags().IntVar(&o.CPUs, "cpus", 2, "virtual processors")
	c.Flags().StringVar(&o.HostLibraryPath, "host-path", "", `library path as the Hyper-V host sees it, e.g. \\fs01\images (default: --library)`)
	c.Flags().StringVar(&o.DiskDirectory, "disk-dir", "", "folder for the VM's differencing disk on the host (default: the host's VirtualHardDiskPath)")
	c.Flags().BoolVar(&o.SkipHashCheck, "skip-hash-check", false, "leave out the SHA-256 check of the parent disk (it reads the whole disk)")
	return c
}

// stepBars draws one progress bar per pass of a library add or verify
// (onprem.AddOptions.Step).
func stepBars() (func(name string) progress.Func, func()) {
	finish := func() {}
	return func(name string) progress.Func {
			finish()
			var bar progress.Func
			bar, finish = newProgressBar(name, 0)
			return bar
		}, func() {
			finish()
		}
}
