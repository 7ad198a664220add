package testenv

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
)

func TestStartPostgres(t *testing.T) {
	pg := StartPostgres(t)
	if !strings.HasPrefix(pg.URL, "postgres://postgres@127.0.0.1:") {
		t.Fatalf("URL %q is not a loopback postgres URL", pg.URL)
	}
	ctx := context.Background()
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fsync string
	if err := db.QueryRowContext(ctx, "SHOW fsync").Scan(&fsync); err != nil {
		t.Fatalf("query the server: %v", err)
	}
	if fsync != "off" {
		t.Errorf("fsync = %q, want off (the harness is tuned for speed)", fsync)
	}
	var listen string
	if err := db.QueryRowContext(ctx, "SHOW listen_addresses").Scan(&listen); err != nil {
		t.Fatal(err)
	}
	if listen != "127.0.0.1" {
		t.Errorf("listen_addresses = %q, want loopback only", listen)
	}

	// Two new databases are distinct and empty.
	a, b := pg.NewDatabase(t), pg.NewDatabase(t)
	if a == b {
		t.Fatalf("NewDatabase returned the same URL twice: %s", a)
	}
	dba, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer dba.Close()
	if _, err := dba.ExecContext(ctx, "CREATE TABLE only_in_a (x int)"); err != nil {
		t.Fatal(err)
	}
	dbb, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer dbb.Close()
	var n int
	if err := dbb.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'only_in_a'").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("a table made in one database is visible in another")
	}
}

func TestStartPostgresProcessStopRemovesDir(t *testing.T) {
	if _, err := PostgresBinDir(); err != nil {
		Missing(t, err.Error())
	}
	pg, stop, err := StartPostgresProcess()
	if err != nil {
		t.Fatal(err)
	}
	dir := pg.Dir
	stop()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("stop left %s behind (err=%v)", dir, err)
	}
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.PingContext(context.Background()); err == nil {
		t.Errorf("server still answers after stop")
	}
}
