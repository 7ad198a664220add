package catalog

import (
	"container/list"
	"context"
	"database/sql/driver"
	"errors"
	"reflect"
)

// SQLite connections keep their prepared statements. modernc's driver
// parses and plans every statement text again on each call (its one-shot
// Exec/Query path prepares and finalizes), which a profile of `imgpipe
// serve` under agent load showed to be a quarter of all CPU: for the
// intake's upsert (with the hosts_groups triggers compiled into it each
// time) and for every dashboard read alike. A statement prepared once per
// connection and reset after use costs only its binding and its steps.
//
// The cache is per connection (database/sql gives a connection to one
// caller at a time), keyed by the statement's text, least recently used
// first out, and bounded by stmtCacheSize. A statement whose rows are
// still open is not shared: a second query of the same text meanwhile
// runs uncached.
const stmtCacheSize = 64

// stmtCacheMaxText: longer texts (a multi-row VALUES of a large batch)
// run uncached; they would crowd the cache out with one-off programs.
const stmtCacheMaxText = 16 << 10

// cachingConnector opens connections of the inner connector that keep
// their prepared statements.
type cachingConnector struct{ inner driver.Connector }

func (c cachingConnector) Connect(ctx context.Context) (driver.Conn, error) {
	cn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	for _, iface := range []any{(*driver.ConnBeginTx)(nil), (*driver.ConnPrepareContext)(nil), (*driver.ExecerContext)(nil), (*driver.QueryerContext)(nil)} {
		if !reflect.TypeOf(cn).Implements(reflect.TypeOf(iface).Elem()) {
			cn.Close()
			return nil, errors.New("sqlite driver connection lacks a context method the statement cache needs")
		}
	}
	return &cachedConn{inner: cn, byText: map[string]*cachedStmt{}}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.inner.Driver() }

type cachedStmt struct {
	text    string
	st      driver.Stmt
	elem    *list.Element
	busy    bool // its rows are open
	evicted bool // out of the cache: close once its rows are
}

type cachedConn struct {
	inner    driver.Conn
	byText   map[string]*cachedStmt
	lru      list.List // front: most recently used
	prepares int       // statements this connection prepared for the cache (tests)
}

var (
	_ driver.Conn               = (*cachedConn)(nil)
	_ driver.ConnBeginTx        = (*cachedConn)(nil)
	_ driver.ConnPrepareContext = (*cachedConn)(nil)
	_ driver.ExecerContext      = (*cachedConn)(nil)
	_ driver.QueryerContext     = (*cachedConn)(nil)
	_ driver.Pinger             = (*cachedConn)(nil)
	_ driver.SessionResetter    = (*cachedConn)(nil)
	_ driver.Validator          = (*cachedConn)(nil)
)

func (c *cachedConn) Prepare(query string) (driver.Stmt, error) { return c.inner.Prepare(query) }

func (c *cachedConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	return c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, query)
}

func (c *cachedConn) Begin() (driver.Tx, error) {
	return c.BeginTx(context.Background(), driver.TxOptions{})
}

func (c *cachedConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	return c.inner.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *cachedConn) Close() error {
	var errs []error
	for e := c.lru.Front(); e != nil; e = e.Next() {
		if s := e.Value.(*cachedStmt); !s.busy {
			errs = append(errs, s.st.Close())
		}
	}
	c.lru.Init()
	clear(c.byText)
	errs = append(errs, c.inner.Close())
	return errors.Join(errs...)
}

func (c *cachedConn) Ping(ctx context.Context) error {
	if p, ok := c.inner.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *cachedConn) ResetSession(ctx context.Context) error {
	if r, ok := c.inner.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *cachedConn) IsValid() bool {
	if v, ok := c.inner.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

// stmt returns the connection's prepared statement of text, preparing it
// on first use; nil (and no error) when it cannot be shared now.
func (c *cachedConn) stmt(ctx context.Context, text string) (*cachedStmt, error) {
	if len(text) > stmtCacheMaxText {
		return nil, nil
	}
	if s, ok := c.byText[text]; ok {
		if s.busy {
			return nil, nil
		}
		c.lru.MoveToFront(s.elem)
		return s, nil
	}
	st, err := c.inner.(driver.ConnPrepareContext).PrepareContext(ctx, text)
	if err != nil {
		return nil, err
	}
	c.prepares++
	s := &cachedStmt{text: text, st: st}
	s.elem = c.lru.PushFront(s)
	c.byText[text] = s
	for c.lru.Len() > stmtCacheSize {
		old := c.lru.Remove(c.lru.Back()).(*cachedStmt)
		delete(c.byText, old.text)
		if old.busy {
			old.evicted = true
		} else if err := old.st.Close(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func (c *cachedConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.inner.(driver.ExecerContext).ExecContext(ctx, query, args)
	}
	return s.st.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (c *cachedConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	s, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return c.inner.(driver.QueryerContext).QueryContext(ctx, query, args)
	}
	rows, err := s.st.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	s.busy = true
	return &cachedRows{Rows: rows, s: s}, nil
}

// cachedRows gives the statement back when closed.
type cachedRows struct {
	driver.Rows
	s *cachedStmt
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	if r.s != nil {
		r.s.busy = false
		if r.s.evicted {
			err = errors.Join(err, r.s.st.Close())
		}
		r.s = nil
	}
	return err
}

// The column type methods database/sql looks for, passed through.

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeLength(i int) (int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypeNullable(i int) (bool, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (int64, int64, bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
