package view

// imgpipe test: the verdicts of a test run; the tests section of imgpipe show.

import (
	"fmt"
	"io"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/testrun"
)

// TestResults draws the verdicts of the tests of ref: as JSON, or a line
// per test and per check (a failed boot with the console's tail).
func TestResults(w io.Writer, asJSON bool, ref catalog.Ref, results []testrun.Result) error {
	if asJSON {
		return JSON(w, results)
	}
	for _, r := range results {
		verdict := "PASSED"
		if !r.Passed {
			verdict = "FAILED"
		}
		fmt.Fprintf(w, "test %s of %s: %s (%s, %s)\n", r.Test, ref, verdict, r.Runner, r.FinishedAt.Sub(r.StartedAt).Round(100*time.Millisecond))
		for _, ch := range r.Checks {
			mark := "ok  "
			if !ch.Passed {
				mark = "FAIL"
			}
			out := ch.Output
			if len(out) > 300 && ch.Passed {
				out = out[:300] + "..."
			}
			fmt.Fprintf(w, "  %s %s", mark, ch.Name)
			if out != "" {
				fmt.Fprintf(w, ": %s", out)
			}
			fmt.Fprintln(w)
		}
		if !r.Passed && r.ConsoleTail != "" && r.FirstFailure().Name == "boot" {
			fmt.Fprintf(w, "  console tail:\n%s\n", r.ConsoleTail)
		}
	}
	return nil
}

// TestRuns is the tests section of imgpipe show: each recorded run with
// its failing checks.
func TestRuns(runs []catalog.TestRun) string {
	if len(runs) == 0 {
		return "tests: none (imgpipe test IMAGE VERSION -f PIPELINE)\n"
	}
	var b []byte
	b = append(b, "tests:\n"...)
	for _, r := range runs {
		verdict := "passed"
		if !r.Passed {
			verdict = "FAILED"
		}
		b = fmt.Appendf(b, "  %s %s on %s, %s (%s), artifact %s\n", r.Test, verdict, r.Runner, When(r.FinishedAt),
			r.FinishedAt.Sub(r.StartedAt).Round(time.Second), Dash(Short(r.ArtifactDigest)))
		for _, ch := range r.Checks {
			if ch.Passed {
				continue
			}
			out := ch.Output
			if len(out) > 200 {
				out = out[:200] + "..."
			}
			b = fmt.Appendf(b, "    FAIL %s: %s\n", ch.Name, out)
		}
	}
	return string(b)
}

// Show draws imgpipe show: the lineage as JSON (with its tests), or the
// provenance, the lineage tree and the tests section.
func Show(w io.Writer, asJSON bool, l *catalog.Lineage) error {
	return Write(w, asJSON, l, Lineage(l)+TestRuns(l.Tests))
}
