package catalog

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// KindTested is a channel requirement that is no copy: a passing test run of
// the version's exact artifact digest (imgpipe test). The default for prod.
const KindTested CopyKind = "tested"

// TestCheck is one verdict of a test run.
type TestCheck struct {
	Name   string `json:"name"`
	Passed bool   `json:"passed"`
	Output string `json:"output,omitempty"` // excerpt
}

// TestRun is one recorded test of a version.
type TestRun struct {
	ID             int64       `json:"id"`
	Ref            Ref         `json:"ref"`
	Test           string      `json:"test"`
	Runner         string      `json:"runner"`
	ArtifactDigest string      `json:"artifact_digest,omitempty"`
	Passed         bool        `json:"passed"`
	StartedAt      time.Time   `json:"started_at"`
	FinishedAt     time.Time   `json:"finished_at"`
	RunID          int64       `json:"run_id,omitempty"`
	Checks         []TestCheck `json:"checks"`
}

// maxCheckOutput bounds an output excerpt kept in the catalog.
const maxCheckOutput = 4 << 10

// AddTestRun records a test run of a version. ArtifactDigest is set to the
// version's recorded artifact digest when empty.
func (c *Catalog) AddTestRun(ctx context.Context, tr TestRun) (TestRun, error) {
	if strings.TrimSpace(tr.Test) == "" || strings.TrimSpace(tr.Runner) == "" {
		return TestRun{}, fmt.Errorf("%w: a test run needs a test name and a runner", ErrInvalid)
	}
	for i := range tr.Checks {
		if len(tr.Checks[i].Output) > maxCheckOutput {
			tr.Checks[i].Output = strings.ToValidUTF8(tr.Checks[i].Output[:maxCheckOutput], "")
		}
	}
	checks, err := json.Marshal(tr.Checks)
	if err != nil {
		return TestRun{}, err
	}
	err = c.tx(ctx, func(tx *sql.Tx) error {
		vid, err := c.versionID(ctx, tx, tr.Ref)
		if err != nil {
			return err
		}
		if tr.ArtifactDigest == "" {
			if err := tx.QueryRowContext(ctx, c.q("SELECT artifact_sha256 FROM versions WHERE id = ?"), vid).Scan(&tr.ArtifactDigest); err != nil {
				return err
			}
		}
		var run sql.NullInt64
		if tr.RunID > 0 {
			run = sql.NullInt64{Int64: tr.RunID, Valid: true}
		}
		passed := 0
		if tr.Passed {
			passed = 1
		}
		return tx.QueryRowContext(ctx, c.q(`INSERT INTO test_runs (version_id, test, runner, artifact_digest, passed, started_at, finished_at, run_id, checks)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`), vid, tr.Test, tr.Runner, tr.ArtifactDigest, passed,
			fmtTime(tr.StartedAt), fmtTime(tr.FinishedAt), run, string(checks)).Scan(&tr.ID)
	})
	if err != nil {
		return TestRun{}, fmt.Errorf("record test run of %s: %w", tr.Ref, err)
	}
	return tr, nil
}

// TestRuns lists a version's test runs, newest first.
func (c *Catalog) TestRuns(ctx context.Context, ref Ref) ([]TestRun, error) {
	vid, err := c.versionID(ctx, c.db, ref)
	if err != nil {
		return nil, err
	}
	return c.testRuns(ctx, c.db, ref, vid)
}

func (c *Catalog) testRuns(ctx context.Context, q querier, ref Ref, vid int64) ([]TestRun, error) {
	rows, err := q.QueryContext(ctx, c.q(`SELECT id, test, runner, artifact_digest, passed, started_at, finished_at, COALESCE(run_id, 0), checks
		FROM test_runs WHERE version_id = ? ORDER BY finished_at DESC, id DESC`), vid)
	if err != nil {
		return nil, fmt.Errorf("list test runs of %s: %w", ref, err)
	}
	defer rows.Close()
	var out []TestRun
	for rows.Next() {
		tr := TestRun{Ref: ref}
		var passed int
		var started, finished, checks string
		if err := rows.Scan(&tr.ID, &tr.Test, &tr.Runner, &tr.ArtifactDigest, &passed, &started, &finished, &tr.RunID, &checks); err != nil {
			return nil, err
		}
		tr.Passed = passed == 1
		tr.StartedAt, tr.FinishedAt = parseTime(started), parseTime(finished)
		if err := json.Unmarshal([]byte(checks), &tr.Checks); err != nil {
			return nil, fmt.Errorf("test run %d of %s: checks: %w", tr.ID, ref, err)
		}
		out = append(out, tr)
	}
	return out, rows.Err()
}

// TestState summarises a version's tests: "passed" when the newest run of
// every test recorded for its current artifact digest passed, "failed" when
// one of them failed, "" when none ran.
func TestState(runs []TestRun, digest string) string {
	seen := map[string]bool{}
	state := ""
	for _, r := range runs { // newest first
		if r.ArtifactDigest != digest || seen[r.Test] {
			continue
		}
		seen[r.Test] = true
		if !r.Passed {
			return "failed"
		}
		state = "passed"
	}
	return state
}

// testedRequirement explains why version vid does not meet KindTested ("" when it does).
func (c *Catalog) testedRequirement(ctx context.Context, q querier, ref Ref, vid int64) (string, error) {
	var digest string
	if err := q.QueryRowContext(ctx, c.q("SELECT artifact_sha256 FROM versions WHERE id = ?"), vid).Scan(&digest); err != nil {
		return "", err
	}
	runs, err := c.testRuns(ctx, q, ref, vid)
	if err != nil {
		return "", err
	}
	switch TestState(runs, digest) {
	case "passed":
		return "", nil
	case "failed":
		for _, r := range runs {
			if r.ArtifactDigest != digest || r.Passed {
				continue
			}
			for _, ch := range r.Checks {
				if !ch.Passed {
					out := ch.Output
					if len(out) > 512 {
						out = out[:512] + "..."
					}
					return fmt.Sprintf("a passing test: test %q failed its check %s (%s, %s): %s", r.Test, ch.Name, r.Runner, r.FinishedAt.Format(time.RFC3339), out), nil
				}
			}
			return fmt.Sprintf("a passing test: test %q failed (%s)", r.Test, r.Runner), nil
		}
	}
	d := digest
	if d == "" {
		d = "(none recorded)"
	}
	return "a passing test of its artifact " + d + " (run: imgpipe test " + ref.Image + " " + ref.Version + ")", nil
}
