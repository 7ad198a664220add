package catalog

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// TestSQLiteReadsDoNotWaitForTheWriter: the intake's writer holds its
// transaction (BEGIN IMMEDIATE) while a batch is written; a read meanwhile
// runs on a connection of its own, in WAL mode, sees the catalog as it was
// before the transaction and does not wait for it.
func TestSQLiteReadsDoNotWaitForTheWriter(t *testing.T) {
	ctx := context.Background()
	c := openAt(t, filepath.Join(t.TempDir(), "catalog.db"))
	if err := c.ReportHost(ctx, Host{Name: "web-a", Platform: PlatformOnprem, Image: "web", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	var mode string
	var mmap int64
	if err := c.db.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
		t.Fatalf("journal_mode %q (%v), want wal: readers would wait for the writer", mode, err)
	}
	if err := c.db.QueryRowContext(ctx, "PRAGMA mmap_size").Scan(&mmap); err != nil || mmap <= 0 {
		t.Fatalf("mmap_size %d (%v), want the database file mapped", mmap, err)
	}
	inTx, release, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- c.tx(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, "UPDATE hosts SET version = '2.0.0' WHERE name = 'web-a'"); err != nil {
				return err
			}
			close(inTx)
			<-release
			return nil
		})
	}()
	select {
	case <-inTx:
	case err := <-done:
		t.Fatalf("write transaction: %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	t0 := time.Now()
	hosts, err := c.Hosts(rctx, HostFilter{})
	cancel()
	close(release)
	if err != nil {
		t.Fatalf("read during the write transaction (after %s): %v", time.Since(t0), err)
	}
	if len(hosts) != 1 || hosts[0].Version != "1.0.0" {
		t.Fatalf("read during the write transaction saw %+v, want web-a at 1.0.0 (the committed state)", hosts)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hosts, err = c.Hosts(ctx, HostFilter{}); err != nil || len(hosts) != 1 || hosts[0].Version != "2.0.0" {
		t.Fatalf("after the commit: %+v %v", hosts, err)
	}
}

// TestSQLiteStatementCache: a connection prepares a statement text once;
// the same text queried again while its rows are open, and a statement
// evicted while its rows are open, still give every row.
func TestSQLiteStatementCache(t *testing.T) {
	ctx := context.Background()
	c, err := Open(ctx, filepath.Join(t.TempDir(), "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := c.ReportHost(ctx, Host{Name: fmt.Sprintf("web-%d", i), Platform: PlatformOnprem, Image: "web", Version: "1.0.0"}); err != nil {
			t.Fatal(err)
		}
	}
	conn, err := c.db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	prepares := func() (n int) {
		t.Helper()
		if err := conn.Raw(func(dc any) error {
			n = dc.(*cachedConn).prepares
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	const q = "SELECT name FROM hosts WHERE name >= ? ORDER BY name"
	p0 := prepares()
	for range 10 {
		var name string
		if err := conn.QueryRowContext(ctx, q, "web-3").Scan(&name); err != nil || name != "web-3" {
			t.Fatalf("cached query: %q %v", name, err)
		}
	}
	if n := prepares() - p0; n != 1 {
		t.Fatalf("10 runs of one text prepared %d statements, want 1", n)
	}
	names := func(rows *sql.Rows) (out []string) {
		t.Helper()
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				t.Fatal(err)
			}
			out = append(out, n)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if err := rows.Close(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	outer, err := conn.QueryContext(ctx, q, "web-0")
	if err != nil {
		t.Fatal(err)
	}
	if !outer.Next() {
		t.Fatal("no first row")
	}
	// the same text while its statement's rows are open
	inner, err := conn.QueryContext(ctx, q, "web-2")
	if err != nil {
		t.Fatal(err)
	}
	if got := names(inner); fmt.Sprint(got) != "[web-2 web-3 web-4]" {
		t.Fatalf("nested query of the same text: %v", got)
	}
	// push the open statement out of the cache
	for i := range stmtCacheSize + 5 {
		var n int
		if err := conn.QueryRowContext(ctx, fmt.Sprintf("SELECT COUNT(*) + %d FROM hosts", i)).Scan(&n); err != nil || n != 5+i {
			t.Fatalf("query %d: %d %v", i, n, err)
		}
	}
	if got := names(outer); fmt.Sprint(got) != "[web-1 web-2 web-3 web-4]" {
		t.Fatalf("rows of an evicted statement: %v", got)
	}
	p1 := prepares()
	var name string
	if err := conn.QueryRowContext(ctx, q, "web-4").Scan(&name); err != nil || name != "web-4" {
		t.Fatalf("evicted text again: %q %v", name, err)
	}
	if prepares() != p1+1 {
		t.Fatal("an evicted text was not prepared again")
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("close with cached statements: %v", err)
	}
}
