// Package catalog is imgpipe's one record of every image version: provenance,
// lineage (every copy of the bits and where it came from), channels and
// promotions, revocations, runs with their steps, a per-image run lock, the
// fleet of hosts reporting what they run, and retention planning.
//
// The same schema and the same code run on SQLite (modernc.org/sqlite, the
// embedded default) and on PostgreSQL (pgx) for teams with several runners.
// The package is pure bookkeeping: side effects outside the catalog (Azure,
// the on-prem library) are performed by other packages through the small
// Revoker and Executor interfaces it defines.
package catalog

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"imgpipe/internal/semver"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"modernc.org/sqlite"
)

// Errors the catalog returns, wrapped with context. Test with errors.Is.
var (
	ErrNotFound        = errors.New("not found")
	ErrConflict        = errors.New("conflict")
	ErrNotForward      = errors.New("channel only moves forward")
	ErrRequirement     = errors.New("version does not meet what the channel requires")
	ErrRevoked         = errors.New("version is revoked")
	ErrInvalid         = semver.ErrInvalid
	ErrSchemaTooNew    = errors.New("catalog schema is newer than this imgpipe")
	ErrLockNotHeld     = errors.New("image lock is no longer held")
	ErrBackendMismatch = errors.New("unsupported catalog location")
)

type dialect int

const (
	dialectSQLite dialect = iota
	dialectPostgres
)

// Catalog is an open catalog database. It is safe for concurrent use.
type Catalog struct {
	db       *sql.DB
	dialect  dialect
	location string // for messages; never holds a password
	now      func() time.Time
	lease    time.Duration // SQLite lock lease
	poll     time.Duration // SQLite lock retry interval
}

// Option changes how Open behaves.
type Option func(*options)

type options struct {
	schemaVersion int // 0 = latest
	now           func() time.Time
	lease         time.Duration
}

// WithSchemaVersion migrates only up to version n instead of the latest
// (used to test migrations from an older schema).
func WithSchemaVersion(n int) Option { return func(o *options) { o.schemaVersion = n } }

// WithClock makes the catalog read the time from now (tests).
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLockLease sets how long a SQLite image lock stays valid without being
// renewed (the holder renews it at a third of the lease). Default 2 minutes.
func WithLockLease(d time.Duration) Option { return func(o *options) { o.lease = d } }

// IsPostgresURL reports whether location names a PostgreSQL catalog.
func IsPostgresURL(location string) bool {
	return strings.HasPrefix(location, "postgres://") || strings.HasPrefix(location, "postgresql://")
}

// Open opens (creating if needed) the catalog at location and migrates its
// schema to the latest version. location is a SQLite file path (or file: URI)
// (also written sqlite:///abs/path) or a postgres:// URL.
func Open(ctx context.Context, location string, opts ...Option) (*Catalog, error) {
	o := options{now: time.Now, lease: 2 * time.Minute}
	for _, f := range opts {
		f(&o)
	}
	if location == "" {
		return nil, fmt.Errorf("%w: empty catalog location: give a SQLite path or a postgres:// URL", ErrBackendMismatch)
	}
	c := &Catalog{now: o.now, lease: o.lease, poll: 50 * time.Millisecond}
	var err error
	if IsPostgresURL(location) {
		c.dialect = dialectPostgres
		c.location = redactURL(location)
		c.db, err = sql.Open("pgx", location)
		if err == nil {
			// keep the pool's connections open: database/sql's default of
			// two idle connections makes every burst start PostgreSQL backends
			c.db.SetMaxOpenConns(20)
			c.db.SetMaxIdleConns(20)
			c.db.SetConnMaxIdleTime(time.Minute)
		}
	} else {
		c.dialect = dialectSQLite
		path := location
		for _, prefix := range []string{"sqlite://", "sqlite:", "file://", "file:"} {
			if strings.HasPrefix(path, prefix) {
				path = strings.TrimPrefix(path, prefix)
				break
			}
		}
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		c.location = path
		if path != ":memory:" && path != "" {
			if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
				return nil, fmt.Errorf("create catalog directory: %w", err)
			}
		}
		// mmap: readers map the database file instead of copying each
		// page through a read system call (WAL frames are still read)
		dsn := "file:" + path + "?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_pragma=mmap_size(268435456)&_txlock=immediate"
		var conn driver.Connector
		if conn, err = sqlite.NewConnector(dsn); err == nil {
			c.db = sql.OpenDB(cachingConnector{conn}) // statements prepared once a connection
		}
		if err == nil && path == ":memory:" {
			c.db.SetMaxOpenConns(1) // every connection would otherwise be its own empty database
		} else if err == nil {
			c.db.SetMaxIdleConns(16) // reused, not reopened (and re-pragma'd) per burst
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open catalog %s: %w", c.location, err)
	}
	if err := c.db.PingContext(ctx); err != nil {
		c.db.Close()
		return nil, fmt.Errorf("open catalog %s: %w (is the database reachable and the path writable?)", c.location, err)
	}
	if err := c.migrate(ctx, o.schemaVersion); err != nil {
		c.db.Close()
		return nil, err
	}
	return c, nil
}

// Close releases the database.
func (c *Catalog) Close() error { return c.db.Close() }

// Backend returns "sqlite" or "postgres".
func (c *Catalog) Backend() string {
	if c.dialect == dialectPostgres {
		return "postgres"
	}
	return "sqlite"
}

// Location returns where the catalog lives (a path, or a URL without password).
func (c *Catalog) Location() string { return c.location }

// DB exposes the database handle for tests and migrations tooling.
func (c *Catalog) DB() *sql.DB { return c.db }

func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "postgres://(unparsable URL)"
	}
	return u.Redacted()
}

// q rewrites ? placeholders for the dialect ($1, $2... on PostgreSQL). The
// catalog's own queries never contain a literal question mark.
func (c *Catalog) q(query string) string {
	if c.dialect != dialectPostgres {
		return query
	}
	var b strings.Builder
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// indexedBy is " INDEXED BY index" on SQLite (its planner, without
// statistics, may prefer an index that gives a GROUP BY its order over a
// narrow range of another) and nothing on PostgreSQL.
func (c *Catalog) indexedBy(index string) string {
	if c.dialect == dialectPostgres {
		return ""
	}
	return " INDEXED BY " + index
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn share.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// tx runs fn in a transaction (BEGIN IMMEDIATE on SQLite, so writers queue
// on the busy timeout instead of failing on lock upgrade).
func (c *Catalog) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin catalog transaction: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit catalog transaction: %w", err)
	}
	return nil
}

const timeLayout = "2006-01-02T15:04:05.000000Z"

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(timeLayout)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		t, _ = time.Parse(time.RFC3339Nano, s)
	}
	return t
}

func (c *Catalog) nowText() string { return fmtTime(c.now()) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
