package main

// The drift verbs: imgpipe baseline (capture, show) records an image's
// configuration; imgpipe drift check compares a running system with it.

import (
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"imgpipe/internal/drift"
	"imgpipe/internal/progress"
	"imgpipe/internal/view"
)

func init() { register(newBaselineCmd); register(newDriftCmd) }

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
		root, baseline, cpuProfile string
		quick                      bool
		limit                      int
		o                          drift.CheckOptions
	)
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report files, packages and services that differ from the baseline (exit 2 on drift)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cpuProfile != "" {
				stop, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stop()
			}
			o.Depth = drift.Full
			if quick {
				o.Depth = drift.Quick
			}
			var finish func()
			o.Progress, finish = countBar("checking")
			r, err := drift.CheckFile(cmd.Context(), root, baseline, limit, o)
			finish()
			if err == nil {
				err = view.Write(stdout, jsonOutput(), r, r.Text())
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
	f.StringArrayVar(&o.Ignore, "ignore", nil, "ignore paths matching this glob (repeatable)")
	f.IntVar(&o.Workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
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

func newBaselineCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "baseline",
		Short: "Give an image its identity and record its configuration baseline",
	}
	cmd.AddCommand(newBaselineCaptureCmd(), newBaselineShowCmd())
	return cmd
}

func newBaselineCaptureCmd() *cobra.Command {
	var (
		tc         drift.TreeCapture
		id         drift.Identity
		noIdentity bool
	)
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Write the image identity and capture the configuration baseline of a tree",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !noIdentity {
				tc.Identity = &id
			}
			var finish func()
			tc.Progress, finish = countBar("capturing baseline")
			res, err := drift.CaptureTree(cmd.Context(), tc)
			finish()
			if err != nil {
				return err
			}
			return view.Write(stdout, jsonOutput(), res, res.Text())
		},
	}
	f := cmd.Flags()
	f.StringVar(&tc.Root, "root", "", "root of the image tree (/ on the image itself)")
	f.StringVar(&id.Image, "image", "", "image name")
	f.StringVar(&id.Version, "version", "", "image version")
	f.StringVar(&id.BuildID, "build-id", "", "build id (for example the CI run)")
	f.StringVar(&id.CatalogID, "catalog-id", "", "catalog id of the image version")
	f.BoolVar(&noIdentity, "no-identity", false, "capture the baseline only; write no identity")
	f.StringArrayVar(&tc.Rules.Paths, "path", nil, "path to cover, relative to --root (repeatable; default: platform paths; . for everything)")
	f.StringArrayVar(&tc.Rules.Include, "include", nil, "record only entries matching this glob (repeatable)")
	f.StringArrayVar(&tc.Rules.Exclude, "exclude", nil, "leave out entries matching this glob (repeatable; adds to the defaults)")
	f.BoolVar(&tc.NoDefaultExcludes, "no-default-excludes", false, "do not apply the default excludes (logs, caches, per-instance files)")
	f.StringVar(&tc.Hash, "hash", drift.DefaultHash, "content hash: blake3 or sha256")
	f.StringVar(&tc.Out, "out", "", "baseline file (default: etc/imgpipe/baseline.bin inside --root)")
	f.IntVar(&tc.Workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
	return cmd
}

func newBaselineShowCmd() *cobra.Command {
	var files bool
	cmd := &cobra.Command{
		Use:   "show FILE",
		Short: "Print a baseline file: identity, rules, collectors, packages, services and optionally files",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			b, err := drift.ReadBaselineFile(args[0])
			if err != nil {
				return err
			}
			return view.Baseline(stdout, jsonOutput(), b, files)
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "list every recorded entry")
	return cmd
}

// countBar is the entry-count progress bar of baseline capture and drift
// check: on stderr when it is a terminal and the output is text.
func countBar(description string) (progress.Func, func()) {
	return view.CountBar(os.Stderr, view.IsTerminal(os.Stderr) && !jsonOutput(), description)
}
