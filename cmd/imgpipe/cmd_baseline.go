package main

import (
	"os"
	"sync/atomic"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"

	"imgpipe/internal/drift"
	"imgpipe/internal/progress"
)

func init() { register(newBaselineCmd) }

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
		root, out, hash              string
		id                           drift.Identity
		noIdentity, noDefaultExclude bool
		rules                        drift.Rules
		workers                      int
	)
	cmd := &cobra.Command{
		Use:   "capture",
		Short: "Write the image identity and capture the configuration baseline of a tree",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			tc := drift.TreeCapture{Root: root, Out: out, Rules: rules, NoDefaultExcludes: noDefaultExclude, Hash: hash, Workers: workers}
			if !noIdentity {
				tc.Identity = &id
			}
			var finish func()
			tc.Progress, finish = driftCountBar("capturing baseline")
			res, err := drift.CaptureTree(cmd.Context(), tc)
			finish()
			if err != nil {
				return err
			}
			return draw(res, res.Text())
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", "", "root of the image tree (/ on the image itself)")
	f.StringVar(&id.Image, "image", "", "image name")
	f.StringVar(&id.Version, "version", "", "image version")
	f.StringVar(&id.BuildID, "build-id", "", "build id (for example the CI run)")
	f.StringVar(&id.CatalogID, "catalog-id", "", "catalog id of the image version")
	f.BoolVar(&noIdentity, "no-identity", false, "capture the baseline only; write no identity")
	f.StringArrayVar(&rules.Paths, "path", nil, "path to cover, relative to --root (repeatable; default: platform paths; . for everything)")
	f.StringArrayVar(&rules.Include, "include", nil, "record only entries matching this glob (repeatable)")
	f.StringArrayVar(&rules.Exclude, "exclude", nil, "leave out entries matching this glob (repeatable; adds to the defaults)")
	f.BoolVar(&noDefaultExclude, "no-default-excludes", false, "do not apply the default excludes (logs, caches, per-instance files)")
	f.StringVar(&hash, "hash", drift.DefaultHash, "content hash: blake3 or sha256")
	f.StringVar(&out, "out", "", "baseline file (default: etc/imgpipe/baseline.bin inside --root)")
	f.IntVar(&workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
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
			if err := draw(b.View(files), b.Text()); err != nil || !files || jsonOutput() {
				return err
			}
			return printTable(drift.FileHeader, b.FileRows())
		},
	}
	cmd.Flags().BoolVar(&files, "files", false, "list every recorded entry")
	return cmd
}

// driftCountBar draws an entry-count progress bar on a terminal (total may be
// unknown: 0), and nothing otherwise.
func driftCountBar(description string) (progress.Func, func()) {
	if !isTerminal(os.Stderr) || jsonOutput() {
		return nil, func() {}
	}
	bar := progressbar.NewOptions64(-1,
		progressbar.OptionSetWriter(os.Stderr),
		progressbar.OptionSetDescription(description),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("files"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
	)
	var last atomic.Int64
	return func(done, total int64) {
			// Called for every entry from many goroutines: draw at most every 1000.
			if done-last.Load() < 1000 && done != total {
				return
			}
			last.Store(done)
			if total > 0 {
				bar.ChangeMax64(total)
			}
			_ = bar.Set64(done)
		}, func() {
			_ = bar.Finish()
		}
}
