package main

import (
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"imgpipe/internal/drift"
)

func init() { register(newDriftCmd) }

func newDriftCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "drift",
		Short: "Compare a running system with the configuration baseline of its image",
	}
	cmd.AddCommand(newDriftCheckCmd())
	return cmd
}

func newDriftCheckCmd() *cobra.Command {
	var (
		root, baseline string
		quick          bool
		ignore         []string
		workers, limit int
		cpuProfile     string
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report files, packages and services that differ from the baseline (exit 2 on drift)",
		Long: `check walks the paths recorded in the baseline and reports:
  files     added, removed, or changed, naming what changed: content, mode,
            owner, size, type, target (symlinks), device
  packages  added, removed, or changed in version (dpkg, rpm)
  services  systemd units enabled, disabled, masked, added or removed
  problems  entries that could not be examined (unreadable, vanished or
            changed during the walk); they do not stop the check

Exit status: 0 no drift, 2 drift found, 1 the check itself failed.

A full check hashes every file. --quick re-hashes only files whose size,
mtime, ctime or inode changed since the baseline, like git's index: cheap
enough to run every few minutes. It trusts that the kernel's ctime changes on
every write, chmod and chown (user space cannot set ctime), and re-hashes
files touched within 2s of the capture ("racy" timestamps). It does not
protect against someone who can reset the clock or edit the disk directly:
schedule a full check too.

--ignore adds globs for expected churn on top of the baseline's excludes
(baselines captured with the default excludes already leave out var/log,
var/cache, tmp, per-instance files and imgpipe's own files).`,
		Example: `  # on the VM: full check against the baseline baked into the image
  imgpipe drift check

  # every 5 minutes from a timer, cheap
  imgpipe drift check --quick --ignore 'etc/cron.d/local-*' -o json

  # a mounted image tree against a baseline kept elsewhere
  imgpipe drift check --root /mnt/img --baseline /srv/baselines/web-1.4.0.bin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			depth := drift.Full
			if quick {
				depth = drift.Quick
			}
			pf, finish := driftCountBar("checking")
			r, err := drift.CheckFile(cmd.Context(), root, baseline, limit, drift.CheckOptions{Depth: depth, Ignore: ignore, Workers: workers, Progress: pf})
			finish()
			if err == nil {
				err = draw(r, r.Text())
			}
			if err == nil && r.Drifted {
				return negative(nil)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "/", "root of the tree to check")
	f.StringVar(&baseline, "baseline", "", "baseline file (default: etc/imgpipe/baseline.bin inside --root)")
	f.BoolVar(&quick, "quick", false, "re-hash only files whose size, mtime, ctime or inode changed")
	f.StringArrayVar(&ignore, "ignore", nil, "ignore paths matching this glob (repeatable)")
	f.IntVar(&workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile (pprof) of the check to this file")
	_ = f.MarkHidden("cpuprofile")
	f.IntVar(&limit, "limit", 0, "report at most this many file changes and problems (0: all); the summary counts all")
	return cmd
}

// startCPUProfile writes a pprof CPU profile to path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}
