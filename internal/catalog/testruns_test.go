package catalog

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTestRunsAndTestedRequirement(t *testing.T) {
	ctx := context.Background()
	c := openAt(t, "sqlite://"+filepath.Join(t.TempDir(), "c.db"))
	ref := Ref{Image: "web", Version: "1.0.0"}
	if _, err := c.AddVersion(ctx, NewVersion{Image: "web", Version: "1.0.0", Provenance: Provenance{ArtifactSHA256: "aa"}}); err != nil {
		t.Fatal(err)
	}
	if err := c.SetRequirements(ctx, "web", "prod", []Requirement{{Kind: KindTested}}); err != nil {
		t.Fatal(err)
	}
	promote := func() error {
		_, err := c.Promote(ctx, PromoteRequest{Ref: ref, Channel: "prod", By: "t"})
		return err
	}
	if err := promote(); !errors.Is(err, ErrRequirement) || !strings.Contains(err.Error(), "passing test of its artifact aa") {
		t.Fatalf("untested: %v", err)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	failed := TestRun{Ref: ref, Test: "smoke", Runner: "qemu-tcg", StartedAt: now, FinishedAt: now.Add(time.Minute),
		Checks: []TestCheck{{Name: "boot", Passed: true}, {Name: "command:nginx", Output: "exit 1, want 0; output: nginx: not running"}}}
	if _, err := c.AddTestRun(ctx, failed); err != nil {
		t.Fatal(err)
	}
	if err := promote(); !errors.Is(err, ErrRequirement) || !strings.Contains(err.Error(), "command:nginx") || !strings.Contains(err.Error(), "nginx: not running") {
		t.Fatalf("failed test: %v", err)
	}
	// a pass of another artifact digest does not count
	other := failed
	other.ArtifactDigest, other.Passed, other.Checks = "bb", true, nil
	other.FinishedAt = now.Add(2 * time.Minute)
	if _, err := c.AddTestRun(ctx, other); err != nil {
		t.Fatal(err)
	}
	if err := promote(); !errors.Is(err, ErrRequirement) {
		t.Fatalf("a pass of another digest was accepted: %v", err)
	}
	pass := failed
	pass.Passed, pass.Checks = true, []TestCheck{{Name: "boot", Passed: true}}
	pass.FinishedAt = now.Add(3 * time.Minute)
	if _, err := c.AddTestRun(ctx, pass); err != nil {
		t.Fatal(err)
	}
	runs, err := c.TestRuns(ctx, ref)
	if err != nil || len(runs) != 3 || runs[0].ArtifactDigest != "aa" || !runs[0].Passed || TestState(runs, "aa") != "passed" {
		t.Fatalf("runs %+v %v", runs, err)
	}
	if runs[2].Checks[1].Output == "" || runs[2].Runner != "qemu-tcg" {
		t.Fatalf("checks not kept: %+v", runs[2])
	}
	if err := promote(); err != nil {
		t.Fatalf("tested version refused: %v", err)
	}
}
