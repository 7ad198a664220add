package main

import (
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"

	"imgpipe/internal/drift"
	"imgpipe/internal/view"
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
