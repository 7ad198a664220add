package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/attest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/supplychain"
	"imgpipe/internal/testrun"
)

func init() { register(newTestRunCmd) }

func newTestRunCmd() *cobra.Command {
	var (
		loc, file, only, accel, disk, by, signKey string
	)
	cmd := &cobra.Command{
		Use:   "test IMAGE VERSION -f PIPELINE",
		Short: "Boot a version's on-prem library copy in qemu and run its declared tests",
		Long: `test boots the version's on-prem library copy as the test environment would,
and runs the test blocks the pipeline file declares for the image:

  test "smoke" {
    boot_timeout = "5m"          # the whole boot and check
    boot_marker  = "login:"      # console text that marks a boot (optional)
    drift_clean  = true          # the image's drift check must be clean (default)
    command "nginx" {
      run         = "systemctl is-active nginx"
      expect_exit = 0
      timeout     = "30s"
    }
  }

The library copy is never written: qemu boots a throwaway qcow2 overlay on it
(KVM when /dev/kvm can be opened, else TCG; --accel chooses), with no network.
The test spec reaches the guest as a small read-only disk; the image's agent,
started at boot with 'imgpipe agent --once --report-to serial', answers on the
second serial port (COM2). A guest that does not answer within boot_timeout,
or answers with a malformed or stale report, fails the test.

Each result is recorded in the catalog (shown by 'imgpipe show' and
'imgpipe runs'); a channel that requires "tested" (promote) then accepts the
version only when its exact artifact digest passed.

Exit status: 0 every test passed, 2 a test failed, 1 the test could not run.`,
		Example: `  imgpipe test web 1.4.0 -f pipeline.hcl
  imgpipe test web@1.4.0 -f pipeline.hcl --test smoke --accel tcg`,
		Args: refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			if file == "" {
				return errors.New("give the pipeline file with -f: its test blocks say what to check")
			}
			f, err := config.Load(file)
			if err != nil {
				return err
			}
			var tests []config.Test
			for _, t := range f.TestsOf(ref.Image) {
				if only == "" || t.Name == only {
					tests = append(tests, t)
				}
			}
			if only != "" && len(tests) == 0 {
				return fmt.Errorf("the pipeline file declares no test %q for image %s", only, ref.Image)
			}
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			d, v, err := testrun.LibraryDisk(cmd.Context(), c, ref)
			if disk != "" && err != nil && errors.Is(err, testrun.ErrNoLibraryCopy) {
				err = nil
			}
			if err != nil {
				return err
			}
			if disk != "" {
				d = testrun.Disk{Path: disk, Format: testrun.FormatOf(disk), Generation: v.HyperVGeneration}
			}
			q := &testrun.Qemu{Accel: accel}
			if !jsonOutput() {
				q.Progress = func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }
			}
			g := &testrun.Gate{Catalog: c, Runner: q, By: whoAmI(by)}
			results, err := g.Run(cmd.Context(), ref, d, v, testrun.FromConfig(tests))
			if err != nil {
				return err
			}
			failed := false
			for _, r := range results {
				failed = failed || !r.Passed
			}
			if signKey != "" {
				signer, err := attest.LoadSigner(signKey)
				if err != nil {
					return err
				}
				for _, r := range results {
					var checks []attest.Check
					for _, ch := range r.Checks {
						checks = append(checks, attest.Check{Name: r.Test + "/" + ch.Name, Passed: ch.Passed})
					}
					if _, err := supplychain.SignTest(cmd.Context(), c, ref, signer, r.Runner, r.Test, checks); err != nil {
						return fmt.Errorf("test %s recorded, but its attestation was not signed: %w", r.Test, err)
					}
				}
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
		},
	}
	addCatalogFlag(cmd, &loc)
	fl := cmd.Flags()
	fl.StringVarP(&file, "file", "f", "", "pipeline file with the image's test blocks (required)")
	fl.StringVar(&only, "test", "", "run only this test block")
	fl.StringVar(&accel, "accel", "auto", "auto (KVM when /dev/kvm opens, else TCG), kvm or tcg")
	fl.StringVar(&disk, "disk", "", "boot this disk instead of the version's library copy (still read-only)")
	fl.StringVar(&by, "by", "", "who runs the test (default $USER)")
	fl.StringVar(&signKey, "sign-key", "", "sign each result as an in-toto test-result attestation with this private key (imgpipe verify --require-test checks it)")
	return cmd
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
