package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/testrun"
	"imgpipe/internal/view"
)

func init() { register(newTestRunCmd) }

func newTestRunCmd() *cobra.Command {
	var (
		by string
		o  testrun.Options
	)
	cmd := &cobra.Command{
		Use:   "test IMAGE VERSION -f PIPELINE",
		Short: "Boot a version's on-prem library copy in qemu (or print the Hyper-V script) and run its declared tests",
		Args:  refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			o.By = whoAmI(by)
			p, err := testrun.Prepare(ref, o)
			if err != nil {
				return err
			}
			p.Progress = textLines(cmd.ErrOrStderr())
			return withCatalogOf(cmd, p.Config, required, func(c *catalog.Catalog) error {
				script, results, err := p.Run(cmd.Context(), c)
				if err != nil {
					return err
				}
				if script != "" { // --runner hyperv without --report: the script to run on the host
					return view.Write(stdout, false, nil, script)
				}
				if err := view.TestResults(stdout, jsonOutput(), ref, results); err != nil || testrun.Passed(results) {
					return err
				}
				return negative(nil) // a failed test is exit status 2
			})
		},
	}
	addCatalogFlag(cmd, nil)
	fl := cmd.Flags()
	fl.StringVarP(&o.File, "file", "f", "", "pipeline file with the image's test blocks (required)")
	fl.StringVar(&o.Only, "test", "", "run only this test block")
	fl.StringVar(&o.Runner, "runner", "qemu", "qemu (boot here) or hyperv (print the PowerShell for a Hyper-V host; --report records its results)")
	fl.StringVar(&o.Accel, "accel", "auto", "qemu: auto (KVM when /dev/kvm opens, else TCG), kvm or tcg")
	fl.StringVar(&o.Disk, "disk", "", "qemu: boot this disk instead of the version's library copy (still read-only)")
	fl.StringVar(&o.HyperV.HostLibraryPath, "host-path", "", "hyperv: the library root as the Hyper-V host sees it, e.g. \\\\fs01\\images (default: the library path)")
	fl.StringVar(&o.HyperV.WorkDir, "work-dir", "", "hyperv: where the host keeps the test's disks and reports (default: its VirtualHardDiskPath)")
	fl.Int64Var(&o.HyperV.MemoryBytes, "memory-bytes", 0, "hyperv: startup memory of the test VM (default 1 GiB)")
	fl.IntVar(&o.HyperV.CPUs, "cpus", 0, "hyperv: virtual processors of the test VM (default 2)")
	fl.BoolVar(&o.HyperV.SkipHashCheck, "no-hash-check", false, "hyperv: leave out the SHA-256 check of the library copy (it reads the whole disk over SMB)")
	fl.StringArrayVar(&o.Reports, "report", nil, "hyperv: record this report the script saved (repeatable); its .spec file must be beside it")
	fl.StringVar(&by, "by", "", "who runs the test (default $USER)")
	fl.StringVar(&o.SignKey, "sign-key", "", "sign each result as an in-toto test-result attestation with this private key (imgpipe verify --require-test checks it)")
	return cmd
}

// publishGate is publish's test gate: before a channel that requires a
// passing test moves (prod, by default), the file's tests boot the version's
// library copy; a version promoted to prod is included in latest.
func publishGate(cat *catalog.Catalog, f *config.File) *pipeline.FileGate {
	return &pipeline.FileGate{Catalog: cat, File: f, Runner: &testrun.Qemu{Progress: textLines(os.Stderr)}, Stager: stagerFor(f), By: whoAmI("")}
}

// textLines writes progress lines to w under text output (nil: none under -o json).
func textLines(w io.Writer) func(string) {
	if jsonOutput() {
		return nil
	}
	return func(s string) { fmt.Fprintln(w, s) }
}
