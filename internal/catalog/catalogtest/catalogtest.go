// Package catalogtest holds catalog fixtures for the tests of other
// packages. It is imported by tests only.
package catalogtest

import (
	"context"
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

// Tested records a passing test run of ref's current artifact digest, as
// imgpipe test does when every check passes. Prod requires one by default
// (catalog migration 16), so a test that promotes a version to prod without
// booting it calls Tested first: the promotion's other requirements still
// apply.
func Tested(t testing.TB, c *catalog.Catalog, ref catalog.Ref) catalog.TestRun {
	t.Helper()
	now := time.Now().UTC()
	tr, err := c.AddTestRun(context.Background(), catalog.TestRun{Ref: ref, Test: "fixture", Runner: "fixture", Passed: true,
		StartedAt: now, FinishedAt: now, Checks: []catalog.TestCheck{{Name: "boot", Passed: true, Output: "recorded by catalogtest.Tested"}}})
	if err != nil {
		t.Fatalf("record a passing test of %s: %v", ref, err)
	}
	return tr
}

// TestedAt opens the catalog at loc (a path or postgres:// URL, as a CLI
// test passes with --catalog), records a passing test of ref and closes it.
func TestedAt(t testing.TB, loc string, ref catalog.Ref) {
	t.Helper()
	c, err := catalog.Open(context.Background(), loc)
	if err != nil {
		t.Fatalf("open the catalog %s: %v", loc, err)
	}
	defer c.Close()
	Tested(t, c, ref)
}
