package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

// v1Tables are the tables of schema version 1, all of which migration 2 must
// carry over row for row.
var v1Tables = []string{"images", "versions", "version_tags", "copies", "channels", "promotions", "revocations", "runs", "run_steps", "image_locks"}

func countRows(t *testing.T, c *Catalog) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, tbl := range v1Tables {
		var n int
		if err := c.DB().QueryRowContext(context.Background(), "SELECT COUNT(*) FROM "+tbl).Scan(&n); err != nil {
			t.Fatalf("count %s: %v", tbl, err)
		}
		out[tbl] = n
	}
	return out
}

// testMigration builds a catalog at schema version 1, fills every table with
// the SQL of that version, migrates through every later migration to the
// latest, and checks nothing was lost. Migrations 3 and later only add tables;
// one that rewrites existing rows must populate what it rewrites here.
func testMigration(t *testing.T, b backend) {
	ctx := context.Background()
	loc := b.newLocation(t)
	old, err := Open(ctx, loc, WithSchemaVersion(1))
	if err != nil {
		t.Fatal(err)
	}
	if v, err := old.SchemaVersion(ctx); err != nil || v != 1 {
		t.Fatalf("schema version %d, %v; want 1", v, err)
	}
	const ts = "2025-12-01T10:00:00.000000Z"
	stmts := []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO images (id, name, created_at) VALUES (1, 'base', ?), (2, 'web', ?)", []any{ts, ts}},
		{`INSERT INTO versions (id, image_id, version, status, git_commit, template_hash, packer_version, build_id, build_time,
			artifact_sha256, hyperv_generation, os_type, parent_version_id, created_at) VALUES
			(1, 1, '1.0.0', 'active', 'c0ffee', 'sha256:t', '1.6.6', 'b1', ?, 'aa', 'V2', 'Linux', NULL, ?),
			(2, 2, '2.0.0', 'revoked', 'beef', '', '', '', '', 'bb', 'V2', 'Linux', 1, ?),
			(3, 2, '2.1.0', 'active', '', '', '', '', '', 'cc', 'V1', 'Windows', 1, ?)`, []any{ts, ts, ts, ts}},
		{"INSERT INTO version_tags (version_id, key, value) VALUES (1, 'team', 'platform'), (3, 'keep', 'forever')", nil},
		{`INSERT INTO copies (id, version_id, kind, location, resource_id, fingerprint, state, parent_copy_id, detail, created_at, updated_at) VALUES
			(1, 1, 'artifact', '', 'build/base.vhdx', 'sha256:aa', 'Present', NULL, '{}', ?, ?),
			(2, 1, 'blob', 'westeurope', 'https://a/vhds/base.vhd', 'md5:x size:1', 'Succeeded', 1, '{}', ?, ?),
			(3, 1, 'gallery_version', 'westeurope', 'gv/base/1.0.0', '', 'Succeeded', 2, '{"replicas":1}', ?, ?)`, []any{ts, ts, ts, ts, ts, ts}},
		{"INSERT INTO channels (id, image_id, name, version_id, updated_at) VALUES (1, 1, 'prod', 1, ?), (2, 2, 'test', 3, ?)", []any{ts, ts}},
		{"INSERT INTO promotions (channel_id, from_version_id, to_version_id, promoted_by, promoted_at) VALUES (1, NULL, 1, 'ann', ?), (2, NULL, 3, 'bob', ?)", []any{ts, ts}},
		{"INSERT INTO revocations (version_id, reason, revoked_by, revoked_at, cascade_requested, cause_version_id) VALUES (2, 'CVE', 'sec', ?, 0, NULL)", []any{ts}},
		{"INSERT INTO runs (id, kind, image, version, status, started_by, started_at, ended_at, error) VALUES (1, 'publish', 'base', '1.0.0', 'succeeded', 'ci', ?, ?, '')", []any{ts, ts}},
		{"INSERT INTO run_steps (run_id, seq, name, status, detail, resource_ids, started_at, ended_at) VALUES (1, 1, 'upload', 'succeeded', '', '[\"https://a/vhds/base.vhd\"]', ?, ?)", []any{ts, ts}},
		{"INSERT INTO image_locks (image, owner, acquired_at, expires_at) VALUES ('web', 'stale/1', ?, ?)", []any{ts, ts}},
	}
	for _, s := range stmts {
		if _, err := old.DB().ExecContext(ctx, old.q(s.sql), s.args...); err != nil {
			t.Fatalf("populate v1: %v\n%s", err, s.sql)
		}
	}
	if old.dialect == dialectPostgres { // explicit ids: move the identity sequences past them
		for _, tbl := range []string{"images", "versions", "copies", "channels", "runs"} {
			if _, err := old.DB().ExecContext(ctx, "SELECT setval(pg_get_serial_sequence('"+tbl+"', 'id'), (SELECT MAX(id) FROM "+tbl+"))"); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := countRows(t, old)
	old.Close()

	c := openAt(t, loc)
	if v, _ := c.SchemaVersion(ctx); v != LatestSchemaVersion() {
		t.Fatalf("after migration: schema version %d, want %d", v, LatestSchemaVersion())
	}
	after := countRows(t, c)
	for _, tbl := range v1Tables {
		if before[tbl] != after[tbl] || before[tbl] == 0 {
			t.Errorf("%s: %d rows before, %d after", tbl, before[tbl], after[tbl])
		}
	}
	// Every row reads back through the current API.
	v, err := c.Version(ctx, Ref{"web", "2.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	if v.Parent == nil || *v.Parent != (Ref{"base", "1.0.0"}) || v.Tags["keep"] != "forever" || v.OSType != "Windows" || !v.DeprecatedAt.IsZero() {
		t.Errorf("migrated version: %+v", v)
	}
	rv, _ := c.Version(ctx, Ref{"web", "2.0.0"})
	if rv.Revocation == nil || rv.Revocation.Reason != "CVE" {
		t.Errorf("migrated revocation: %+v", rv.Revocation)
	}
	l, err := c.Lineage(ctx, Ref{"base", "1.0.0"})
	if err != nil || len(l.Roots) != 1 || len(l.Roots[0].Children) != 1 || len(l.Roots[0].Children[0].Children) != 1 ||
		string(l.Roots[0].Children[0].Children[0].Detail) != `{"replicas":1}` {
		t.Errorf("migrated lineage: %+v %v", l, err)
	}
	if l.Version.BuildTime.IsZero() || l.Version.GitCommit != "c0ffee" {
		t.Errorf("migrated provenance: %+v", l.Version.Provenance)
	}
	ps, _ := c.Promotions(ctx, "web", "")
	if len(ps) != 1 || ps[0].By != "bob" || ps[0].To != "2.1.0" {
		t.Errorf("migrated promotions: %+v", ps)
	}
	r, err := c.Run(ctx, 1)
	if err != nil || len(r.Steps) != 1 || r.Steps[0].ResourceIDs[0] != "https://a/vhds/base.vhd" {
		t.Errorf("migrated run: %+v %v", r, err)
	}
	// What migration 2 added works on the migrated data.
	// Migration 16 adds a passing test to prod's defaults.
	reqs, _ := c.Requirements(ctx, "web", "prod")
	if len(reqs) != 2 || reqs[0].Kind != KindGalleryVersion || reqs[0].State != StateSucceeded || reqs[1].Kind != KindTested {
		t.Errorf("default prod requirements: %+v", reqs)
	}
	if _, err := c.Promote(ctx, PromoteRequest{Ref: Ref{"web", "2.1.0"}, Channel: "prod", By: "x"}); !errors.Is(err, ErrRequirement) {
		t.Errorf("promote after migration: %v", err)
	}
	// New rows get fresh ids after the migrated ones.
	if _, err := c.AddVersion(ctx, NewVersion{Image: "web", Version: "2.2.0"}); err != nil {
		t.Errorf("add a version after migration: %v", err)
	}
	// What migration 3 added works on the migrated data.
	if _, err := c.PutDocument(ctx, Ref{"base", "1.0.0"}, Document{Kind: DocSBOM, MediaType: "application/json", Data: []byte("{}")}); err != nil {
		t.Errorf("store a document after migration: %v", err)
	}
	// Opening again is a no-op.
	again := openAt(t, loc)
	if v, _ := again.SchemaVersion(ctx); v != LatestSchemaVersion() {
		t.Errorf("re-open: schema version %d", v)
	}

	// A catalog from a newer imgpipe is refused, not damaged.
	if _, err := c.DB().ExecContext(ctx, c.q("INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', ?)"), ts); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, loc); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("open a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

func TestMigrationsLoad(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		for _, d := range []dialect{dialectSQLite, dialectPostgres} {
			if len(splitStatements(m.sql[d])) == 0 {
				t.Errorf("migration %d has no statements for dialect %d", m.version, d)
			}
		}
	}
	got := splitStatements("-- c; x\nCREATE TABLE a (x int);\nINSERT INTO a VALUES (1); -- tail\n")
	if len(got) != 2 || got[0] != "CREATE TABLE a (x int)" || got[1] != "INSERT INTO a VALUES (1)" {
		t.Errorf("splitStatements: %q", got)
	}
}

// TestMigrationNumbersAreUnique: two migrations with one number (two
// branches that each took the next free one) are refused, not merged with
// one of them skipped.
func TestMigrationNumbersAreUnique(t *testing.T) {
	files := fstest.MapFS{
		"migrations/0001_base.sql":         {Data: []byte("CREATE TABLE a (x int);")},
		"migrations/0002_one.sql":          {Data: []byte("CREATE TABLE b (x int);")},
		"migrations/0002_other.sql":        {Data: []byte("CREATE TABLE c (x int);")},
		"migrations/0002_one.postgres.sql": {Data: []byte("CREATE TABLE b (x int);")},
	}
	if _, err := loadMigrationsFrom(files); err == nil || !strings.Contains(err.Error(), "share a number") {
		t.Fatalf("duplicate migration number: %v", err)
	}
	delete(files, "migrations/0002_other.sql")
	ms, err := loadMigrationsFrom(files)
	if err != nil || len(ms) != 2 {
		t.Fatalf("a portable file with its dialect variant: %v, %d migrations", err, len(ms))
	}
}
