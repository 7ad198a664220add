package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/testrun"
)

func init() { register(newTestRunCmd) }

func newTestRunCmd() *cobra.Command {
	var (
		loc, file, only, accel, disk, by, signKey, runner string
		reports                                           []string
		hv                                                testrun.HyperVOptions
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
			if file == "" {
				return errors.New("give the pipeline file with -f: its test blocks say what to check")
			}
			if runner != "qemu" && runner != "hyperv" {
				return fmt.Errorf("--runner %q: use qemu or hyperv", runner)
			}
			if len(reports) > 0 && runner != "hyperv" {
				return errors.New("--report records the Hyper-V script's reports: add --runner hyperv")
			}
			f, err := config.Load(file)
			if err != nil {
				return err
			}
			tests, err := testrun.Selected(f, ref.Image, only)
			if err != nil {
				return err
			}
			var signer attest.Signer
			if signKey != "" {
				if signer, err = attest.LoadSigner(signKey); err != nil {
					return err
				}
			}
			c, err := openCatalogWith(cmd.Context(), catalogChoice{flag: loc, file: f})
			if err != nil {
				return err
			}
			defer c.Close()
			var results []testrun.Result
			switch {
			case runner == "hyperv" && len(reports) == 0:
				script, err := testrun.HyperVScriptOf(cmd.Context(), c, ref, tests, hv)
				if err != nil {
					return err
				}
				_, err = fmt.Fprint(stdout, script)
				return err
			case runner == "hyperv":
				results, err = testrun.RecordHyperV(cmd.Context(), c, ref, tests, reports, whoAmI(by), signer)
			default:
				q := &testrun.Qemu{Accel: accel}
				if !jsonOutput() {
					q.Progress = func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }
				}
				results, err = testrun.RunTests(cmd.Context(), c, testrun.Request{Ref: ref, Tests: tests, Disk: disk, Runner: q, By: whoAmI(by), Signer: signer})
			}
			if err != nil {
				return err
			}
			return printTestResults(ref, results)
		},
	}
	addCatalogFlag(cmd, &loc)
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "pipeline file with the image's test blocks (required)")
	fl.StringVar(&only, "test", "", "run only this test block")
	fl.StringVar(&runner, "runner", "qemu", "qemu (boot here) or hyperv (print the PowerShell for a Hyper-V host; --report records its results)")
	fl.StringVar(&accel, "accel", "auto", "qemu: auto (KVM when /dev/kvm opens, else TCG), kvm or tcg")
	fl.StringVar(&disk, "disk", "", "qemu: boot this disk instead of the version's library copy (still read-only)")
	fl.StringVar(&hv.HostLibraryPath, "host-path", "", "hyperv: the library root as the Hyper-V host sees it, e.g. \\\\fs01\\images (default: the library path)")
	fl.StringVar(&hv.WorkDir, "work-dir", "", "hyperv: where the host keeps the test's disks and reports (default: its VirtualHardDiskPath)")
	fl.Int64Var(&hv.MemoryBytes, "memory-bytes", 0, "hyperv: startup memory of the test VM (default 1 GiB)")
	fl.IntVar(&hv.CPUs, "cpus", 0, "hyperv: virtual processors of the test VM (default 2)")
	fl.BoolVar(&hv.SkipHashCheck, "no-hash-check", false, "hyperv: leave out the SHA-256 check of the library copy (it reads the whole disk over SMB)")
	fl.StringArrayVar(&reports, "report", nil, "hyperv: record this report the script saved (repeatable); its .spec file must be beside it")
	fl.StringVar(&by, "by", "", "who runs the test (default $USER)")
	fl.StringVar(&signKey, "sign-key", "", "sign each result as an in-toto test-result attestation with this private key (imgpipe verify --require-test checks it)")
	return cmd
}

// publishGate is publish's test gate: before a channel that requires a
// passing test moves (prod, by default), the file's tests boot the version's
// library copy; a version promoted to prod is included in latest.
func publishGate(cat *catalog.Catalog, f *config.File) *pipeline.FileGate {
	q := &testrun.Qemu{}
	if !jsonOutput() {
		q.Progress = func(s string) { fmt.Fprintln(os.Stderr, s) }
	}
	return &pipeline.FileGate{Catalog: cat, File: f, Runner: q, Stager: stagerFor(f), By: whoAmI("")}
}

// printTestResults draws the verdicts; a failed test is exit status 2.
func printTestResults(ref catalog.Ref, results []testrun.Result) error {
	failed := false
	for _, r := range results {
		failed = failed || !r.Passed
	}
	if jsonOutput() {
		if err := printJSON(results); err != nil {
			return err
		}
	} else {
		for _, r := range results {
			verdict := "PASSED"
			if !r.Passed {
				verdict = "FAILED"
			}
			fmt.Fprintf(stdout, "test %s of %s: %s (%s, %s)\n", r.Test, ref, verdict, r.Runner, r.FinishedAt.Sub(r.StartedAt).Round(100*time.Millisecond))
			for _, ch := range r.Checks {
				mark := "ok  "
				if !ch.Passed {
					mark = "FAIL"
				}
				out := ch.Output
				if len(out) > 300 && ch.Passed {
					out = out[:300] + "..."
				}
				fmt.Fprintf(stdout, "  %s %s", mark, ch.Name)
				if out != "" {
					fmt.Fprintf(stdout, ": %s", out)
				}
				fmt.Fprintln(stdout)
			}
			if !r.Passed && r.ConsoleTail != "" && r.FirstFailure().Name == "boot" {
				fmt.Fprintf(stdout, "  console tail:\n%s\n", r.ConsoleTail)
			}
		}
	}
	if failed {
		return negative(nil)
	}
	return nil
}

// testedColumn is the TESTED column of `imgpipe versions`: passed, failed or
// "-", for the version's current artifact digest.
func testedColumn(ctx context.Context, c *catalog.Catalog, v catalog.Version) (string, error) {
	runs, err := c.TestRuns(ctx, v.Ref())
	if err != nil {
		return "", err
	}
	return dash(catalog.TestState(runs, v.ArtifactSHA256)), nil
}

// printTestRuns is the tests section of `imgpipe show`.
func printTestRuns(runs []catalog.TestRun) error {
	if len(runs) == 0 {
		_, err := fmt.Fprintln(stdout, "tests: none (imgpipe test IMAGE VERSION -f PIPELINE)")
		return err
	}
	fmt.Fprintln(stdout, "tests:")
	for _, r := range runs {
		verdict := "passed"
		if !r.Passed {
			verdict = "FAILED"
		}
		fmt.Fprintf(stdout, "  %s %s on %s, %s (%s), artifact %s\n", r.Test, verdict, r.Runner, fmtWhen(r.FinishedAt),
			r.FinishedAt.Sub(r.StartedAt).Round(time.Second), dash(shortHash(r.ArtifactDigest)))
		for _, ch := range r.Checks {
			if ch.Passed {
				continue
			}
			out := ch.Output
			if len(out) > 200 {
				out = out[:200] + "..."
			}
			fmt.Fprintf(stdout, "    FAIL %s: %s\n", ch.Name, out)
		}
	}
	return nil
}
