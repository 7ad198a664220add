package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"sync"
	"time"
)

// Lock is a held per-image run lock. Runs on the same image (publish,
// destroy, gc) take it so they are serialised, across processes and hosts
// sharing the catalog.
//
// SQLite: a row in image_locks claimed by a single conditional upsert in an
// immediate transaction, with a lease renewed in the background; a holder
// that dies loses the lock when the lease runs out.
// PostgreSQL: pg_advisory_lock on a hash of the image name, held on a
// dedicated connection; a holder that dies loses it with its connection.
type Lock struct {
	c     *Catalog
	image string
	token string
	conn  *sql.Conn // PostgreSQL only
	key   int64

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	mu       sync.Mutex
	lost     error
	lostCh   chan struct{}
}

func advisoryKey(image string) int64 {
	h := fnv.New64a()
	h.Write([]byte("imgpipe/image-lock/" + image))
	return int64(h.Sum64())
}

func lockToken(owner string) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return owner + "/" + hex.EncodeToString(b)
}

// LockImage blocks until it holds the run lock of image, or ctx ends.
// owner says who holds it (shown to others); it need not be unique.
func (c *Catalog) LockImage(ctx context.Context, image, owner string) (*Lock, error) {
	if err := ValidateImageName(image); err != nil {
		return nil, err
	}
	l := &Lock{c: c, image: image, token: lockToken(owner), key: advisoryKey(image),
		stop: make(chan struct{}), done: make(chan struct{}), lostCh: make(chan struct{})}
	var err error
	if c.dialect == dialectPostgres {
		err = l.acquirePostgres(ctx)
	} else {
		err = l.acquireSQLite(ctx)
	}
	if err != nil {
		return nil, err
	}
	go l.keepAlive()
	return l, nil
}

// acquirePostgres polls pg_try_advisory_lock: a runner waiting for the lock
// does not keep a pooled connection busy (waiters holding connections could
// starve the holder of one and deadlock the pool).
func (l *Lock) acquirePostgres(ctx context.Context) error {
	for {
		conn, err := l.c.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("lock image %s: %w", l.image, err)
		}
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&got); err != nil {
			discard(conn) // we cannot know whether the session got the lock
			return fmt.Errorf("lock image %s: %w", l.image, err)
		}
		if got {
			l.conn = conn
			// Record the holder for people looking; the advisory lock is what counts.
			_, _ = conn.ExecContext(ctx, `INSERT INTO image_locks (image, owner, acquired_at, expires_at) VALUES ($1, $2, $3, '')
				ON CONFLICT (image) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = ''`,
				l.image, l.token, l.c.nowText())
			return nil
		}
		conn.Close()
		t := time.NewTimer(l.c.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lock image %s (held by another run; imgpipe runs %s shows it): %w", l.image, l.image, ctx.Err())
		case <-t.C:
		}
	}
}

// discard closes a connection for good instead of returning it to the pool,
// so a session that may hold an advisory lock is never reused.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

func (l *Lock) acquireSQLite(ctx context.Context) error {
	c := l.c
	for {
		got := false
		err := c.tx(ctx, func(tx *sql.Tx) error {
			now := c.now()
			res, err := tx.ExecContext(ctx, `INSERT INTO image_locks (image, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)
				ON CONFLICT (image) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at,
				expires_at = excluded.expires_at WHERE image_locks.expires_at < ?`,
				l.image, l.token, fmtTime(now), fmtTime(now.Add(c.lease)), fmtTime(now))
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			got = n == 1
			return err
		})
		if err != nil {
			return fmt.Errorf("lock image %s: %w", l.image, err)
		}
		if got {
			return nil
		}
		t := time.NewTimer(c.poll)
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("lock image %s (held by another run; imgpipe runs %s shows it): %w", l.image, l.image, ctx.Err())
		case <-t.C:
		}
	}
}

// halt stops the keep-alive goroutine and waits for it.
func (l *Lock) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

// keepAlive renews the SQLite lease, or checks the PostgreSQL session, at a
// third of the lease until Unlock.
func (l *Lock) keepAlive() {
	defer close(l.done)
	every := l.c.lease / 3
	if every <= 0 {
		every = time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		var err error
		if l.conn != nil {
			err = l.conn.PingContext(ctx)
		} else {
			var res sql.Result
			res, err = l.c.db.ExecContext(ctx, "UPDATE image_locks SET expires_at = ? WHERE image = ? AND owner = ?",
				fmtTime(l.c.now().Add(l.c.lease)), l.image, l.token)
			if err == nil {
				if n, _ := res.RowsAffected(); n == 0 {
					err = ErrLockNotHeld
				}
			}
		}
		cancel()
		if err != nil && (l.conn != nil || err == ErrLockNotHeld) {
			l.mu.Lock()
			l.lost = fmt.Errorf("%w: %s: %v", ErrLockNotHeld, l.image, err)
			l.mu.Unlock()
			close(l.lostCh)
			return
		}
	}
}

// Err is nil while the lock is held, and says why once it was lost (the
// lease expired or the database connection broke).
func (l *Lock) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Lost is closed when the lock is lost.
func (l *Lock) Lost() <-chan struct{} { return l.lostCh }

// Unlock releases the lock (a lock already lost is just cleaned up).
func (l *Lock) Unlock(ctx context.Context) error {
	l.halt()
	if l.conn != nil {
		defer l.conn.Close() // after discard, a no-op
		_, _ = l.conn.ExecContext(ctx, "DELETE FROM image_locks WHERE image = $1 AND owner = $2", l.image, l.token)
		var ok bool
		if err := l.conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.key).Scan(&ok); err != nil || !ok {
			discard(l.conn) // closing the session releases whatever it still holds
		}
		return nil
	}
	if _, err := l.c.db.ExecContext(ctx, "DELETE FROM image_locks WHERE image = ? AND owner = ?", l.image, l.token); err != nil {
		return fmt.Errorf("unlock image %s: %w (it expires by itself after %s)", l.image, err, l.c.lease)
	}
	return nil
}

// WithImageLock runs fn while holding the image's run lock. fn's context is
// cancelled if the lock is lost while it runs.
func (c *Catalog) WithImageLock(ctx context.Context, image, owner string, fn func(ctx context.Context) error) error {
	l, err := c.LockImage(ctx, image, owner)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	go func() {
		select {
		case <-l.Lost():
			cancel(l.Err())
		case <-stop:
		}
	}()
	ferr := fn(fctx)
	close(stop)
	cancel(nil)
	uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer ucancel()
	uerr := l.Unlock(uctx)
	if ferr != nil {
		return ferr
	}
	return uerr
}
