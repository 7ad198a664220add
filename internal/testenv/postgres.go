package testenv

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx" database/sql driver for NewDatabase
)

// Postgres is a throwaway PostgreSQL server on loopback, in a temporary
// directory, with durability switched off for speed (fsync=off). Never use
// it for data you want to keep.
type Postgres struct {
	URL  string // postgres://postgres@127.0.0.1:PORT/postgres?sslmode=disable
	Port int
	Dir  string // data directory and unix socket directory live under it

	bin     string
	asUser  string // run the server programs as this user ("" = as ourselves)
	counter atomic.Int64
}

// PostgresBinDir finds the directory holding initdb and pg_ctl: $PATH first,
// then Debian's /usr/lib/postgresql/<newest>/bin.
func PostgresBinDir() (string, error) {
	if p, err := exec.LookPath("pg_ctl"); err == nil {
		if _, err := exec.LookPath("initdb"); err == nil {
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return pgMajor(dirs[i]) > pgMajor(dirs[j]) })
	for _, d := range dirs {
		if fileExists(filepath.Join(d, "initdb")) && fileExists(filepath.Join(d, "pg_ctl")) {
			return d, nil
		}
	}
	return "", errors.New("PostgreSQL server programs (initdb, pg_ctl) not found: install Debian's postgresql package")
}

func pgMajor(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// StartPostgres starts a PostgreSQL server for the test (initdb + pg_ctl on
// 127.0.0.1 at a free port in a temporary directory) and stops it, with
// pg_ctl stop -m immediate, in the test's cleanup. It skips the test when
// PostgreSQL is not installed (fails under IMGPIPE_CI=1). As root, initdb and
// the server run as the "postgres" system user, since PostgreSQL refuses root.
func StartPostgres(t testing.TB) *Postgres {
	t.Helper()
	if _, err := PostgresBinDir(); err != nil {
		Missing(t, err.Error())
	}
	pg, stop, err := StartPostgresProcess()
	if err != nil {
		t.Fatalf("start PostgreSQL: %v", err)
	}
	t.Cleanup(stop)
	return pg
}

// StartPostgresProcess starts a throwaway server outside of a test (demo,
// benchmarks). Call stop to shut it down and remove its directory.
func StartPostgresProcess() (pg *Postgres, stop func(), err error) {
	bin, err := PostgresBinDir()
	if err != nil {
		return nil, nil, err
	}
	pg = &Postgres{bin: bin}
	if os.Geteuid() == 0 {
		pg.asUser = "postgres"
		if _, err := user.Lookup(pg.asUser); err != nil {
			return nil, nil, fmt.Errorf("running as root and there is no %q user to run PostgreSQL as: %w", pg.asUser, err)
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, nil, fmt.Errorf("running as root needs runuser (util-linux) to start PostgreSQL as %q: %w", pg.asUser, err)
		}
	}
	dir, err := os.MkdirTemp("", "imgpipe-pg-")
	if err != nil {
		return nil, nil, err
	}
	pg.Dir = dir
	cleanupDir := func() { _ = os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o700); err != nil {
		cleanupDir()
		return nil, nil, err
	}
	if pg.asUser != "" {
		u, _ := user.Lookup(pg.asUser)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			cleanupDir()
			return nil, nil, fmt.Errorf("hand %s to %s: %w", dir, pg.asUser, err)
		}
	}
	data := filepath.Join(dir, "data")
	if out, err := pg.run("initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
		"--locale=C", "--no-sync", "--no-instructions"); err != nil {
		cleanupDir()
		return nil, nil, fmt.Errorf("initdb: %w\n%s", err, out)
	}
	logFile := filepath.Join(dir, "server.log")
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		port, err := pgFreePort()
		if err != nil {
			cleanupDir()
			return nil, nil, err
		}
		opts := strings.Join([]string{
			"-c listen_addresses=127.0.0.1",
			"-p " + strconv.Itoa(port),
			"-c unix_socket_directories=" + dir,
			"-c fsync=off",
			"-c synchronous_commit=off",
			"-c full_page_writes=off",
			"-c shared_buffers=16MB",
			"-c max_connections=60",
			"-c max_wal_size=256MB",
		}, " ")
		out, err := pg.run("pg_ctl", "start", "-D", data, "-l", logFile, "-w", "-t", "60", "-o", opts)
		if err == nil {
			pg.Port = port
			pg.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
			stop = func() {
				_, _ = pg.run("pg_ctl", "stop", "-D", data, "-m", "immediate", "-w", "-t", "30")
				cleanupDir()
			}
			return pg, stop, nil
		}
		logText, _ := os.ReadFile(logFile)
		lastErr = fmt.Errorf("pg_ctl start: %w\n%s\n%s", err, out, tail(logText, 2000))
	}
	cleanupDir()
	return nil, nil, lastErr
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// run runs a PostgreSQL program from the bin directory, as pg.asUser when set.
func (pg *Postgres) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(pg.bin, prog)
	var cmd *exec.Cmd
	if pg.asUser != "" {
		cmd = exec.Command("runuser", append([]string{"-u", pg.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = pg.Dir // the server user may not be allowed into our working directory
	cmd.Env = append(os.Environ(), "LC_ALL=C", "TZ=UTC")
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	// pg_ctl start leaves the server running with our pipes unless it
	// redirects them (it does, to the -l file); Wait would block otherwise.
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	return buf.Bytes(), err
}

func pgFreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// NewDatabase creates an empty database on the server and returns its URL,
// so tests sharing one server do not see each other's tables.
func (pg *Postgres) NewDatabase(t testing.TB) string {
	t.Helper()
	u, err := pg.CreateDatabase(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// CreateDatabase creates an empty database and returns its URL.
func (pg *Postgres) CreateDatabase(ctx context.Context) (string, error) {
	db, err := sql.Open("pgx", pg.URL)
	if err != nil {
		return "", err
	}
	defer db.Close()
	name := fmt.Sprintf("t%d_%d", time.Now().UnixNano()%1_000_000_000, pg.counter.Add(1))
	if _, err := db.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", pg.Port, name), nil
}
