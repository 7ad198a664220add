package catalog

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"sync"
	"time"
)

// Lock is a held per-image run lock. Runs on the same image (publish,
// destroy, gc) take it so they are serialised, across processes and hosts
// sharing the catalog.
//
// SQLite: a row in image_locks claimed by a conditional update in an
// immediate transaction, with a lease renewed in the background. A holder
// that is gone loses the lock when its lease runs out or, on the same host,
// as soon as a waiter sees its process is not alive.
// PostgreSQL: pg_advisory_lock on a hash of the image name, held on a
// dedicated connection; a holder that dies loses it with its connection.
//
// On both, the image_locks row says who holds the lock (Holder: run, pid,
// host, since), and a waiter that takes over from a holder that never
// unlocked marks the holder's run RunAbandoned.
type Lock struct {
	c     *Catalog
	image string
	conn  *sql.Conn // PostgreSQL only
	key   int64

	ownerMu sync.Mutex // serialises the statements that match the row by owner
	rec     holderRecord
	owner   string // rec encoded: the image_locks.owner of this holder

	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}
	mu       sync.Mutex
	lost     error
	lostCh   chan struct{}
}

// ErrLockTimeout is returned when LockOptions.Timeout passed before the
// lock was free.
var ErrLockTimeout = errors.New("timed out waiting for the image lock")

// Holder says who holds an image lock.
type Holder struct {
	Image string    `json:"image"`
	RunID int64     `json:"run_id,omitempty"` // 0 until the holder has started its run record
	PID   int       `json:"pid,omitempty"`
	Host  string    `json:"host,omitempty"`
	By    string    `json:"by,omitempty"`
	Since time.Time `json:"since"`
	// Expires is when a SQLite holder's lease ends unless renewed.
	Expires time.Time `json:"expires,omitzero"`
}

// String reads "run 12 (pid 345, host build-01) since 2026-03-01T12:00:00Z".
func (h Holder) String() string {
	run := "a run not yet recorded"
	if h.RunID > 0 {
		run = fmt.Sprintf("run %d", h.RunID)
	}
	host := h.Host
	if host == "" {
		host = "unknown"
	}
	return fmt.Sprintf("%s (pid %d, host %s) since %s", run, h.PID, host, h.Since.UTC().Format(time.RFC3339))
}

// LockOptions shape how a lock is waited for.
type LockOptions struct {
	// Owner says who takes the lock (a user name; shown to others).
	Owner string
	// Timeout bounds the wait (0: until the context ends); past it the
	// error wraps ErrLockTimeout and names the holder.
	Timeout time.Duration
	// Waiting is called when the lock is held by someone else, once per
	// holder seen (it must not block).
	Waiting func(Holder)
	// TookOver is called when the lock is taken over from a holder that
	// is gone (its run is then marked RunAbandoned).
	TookOver func(Holder)
}

type lockOptionsKey struct{}

// WithLockOptions returns a context under which LockImage and
// WithImageLock use o's Timeout, Waiting and TookOver (the CLI sets them
// once; the code that takes locks need not pass them along).
func WithLockOptions(ctx context.Context, o LockOptions) context.Context {
	return context.WithValue(ctx, lockOptionsKey{}, o)
}

func lockOptionsFrom(ctx context.Context) LockOptions {
	o, _ := ctx.Value(lockOptionsKey{}).(LockOptions)
	return o
}

// holderRecord is what image_locks.owner holds, as JSON: the schema keeps a
// single text column for the holder, and this says everything a waiter
// needs without a schema change.
type holderRecord struct {
	ID   string `json:"id"` // random: tells two holders apart
	By   string `json:"by,omitempty"`
	Run  int64  `json:"run,omitempty"`
	PID  int    `json:"pid,omitempty"`
	Host string `json:"host,omitempty"`
}

func (r holderRecord) encode() string {
	b, _ := json.Marshal(r)
	return string(b)
}

// parseHolder reads a row of image_locks (an owner written by an older
// imgpipe, "user/hex", is kept as By).
func parseHolder(image, owner, acquired, expires string) Holder {
	h := Holder{Image: image, Since: parseTime(acquired), Expires: parseTime(expires)}
	var r holderRecord
	if json.Unmarshal([]byte(owner), &r) == nil && r.ID != "" {
		h.RunID, h.PID, h.Host, h.By = r.Run, r.PID, r.Host, r.By
	} else {
		h.By = owner
	}
	return h
}

var thisHost = sync.OnceValue(func() string {
	h, err := os.Hostname()
	if err != nil {
		return ""
	}
	return h
})

// gone tells whether a SQLite holder can be taken over: its lease ran out,
// or it is on this host and its process is not alive.
func (h Holder) gone(now time.Time) bool {
	if h.Expires.Before(now) {
		return true
	}
	return h.Host != "" && h.Host == thisHost() && h.PID > 0 && !processAlive(h.PID)
}

func advisoryKey(image string) int64 {
	h := fnv.New64a()
	h.Write([]byte("imgpipe/image-lock/" + image))
	return int64(h.Sum64())
}

func newHolderRecord(owner string) holderRecord {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return holderRecord{ID: hex.EncodeToString(b), By: owner, PID: os.Getpid(), Host: thisHost()}
}

// LockImage blocks until it holds the run lock of image, or ctx ends.
// owner says who holds it (shown to others); it need not be unique. The
// wait follows the LockOptions of ctx (WithLockOptions).
func (c *Catalog) LockImage(ctx context.Context, image, owner string) (*Lock, error) {
	o := lockOptionsFrom(ctx)
	o.Owner = owner
	return c.LockImageWith(ctx, image, o)
}

// LockImageWith is LockImage with explicit options.
func (c *Catalog) LockImageWith(ctx context.Context, image string, o LockOptions) (*Lock, error) {
	if err := ValidateImageName(image); err != nil {
		return nil, err
	}
	l := &Lock{c: c, image: image, key: advisoryKey(image),
		stop: make(chan struct{}), done: make(chan struct{}), lostCh: make(chan struct{})}
	l.rec = newHolderRecord(o.Owner)
	l.owner = l.rec.encode()
	w := &waiter{opts: o, image: image, parent: ctx}
	wctx := ctx
	if o.Timeout > 0 {
		var cancel context.CancelFunc
		wctx, cancel = context.WithTimeout(ctx, o.Timeout)
		defer cancel()
	}
	var err error
	if c.dialect == dialectPostgres {
		err = l.acquirePostgres(wctx, w)
	} else {
		err = l.acquireSQLite(wctx, w)
	}
	if err != nil {
		return nil, err
	}
	go l.keepAlive()
	return l, nil
}

// waiter reports holders to LockOptions.Waiting and makes the error of a
// wait that ended.
type waiter struct {
	opts   LockOptions
	image  string
	parent context.Context
	last   *Holder
}

func (w *waiter) saw(h Holder) {
	if w.last != nil && w.last.Since.Equal(h.Since) && w.last.PID == h.PID && w.last.Host == h.Host && w.last.RunID == h.RunID {
		return
	}
	w.last = &h
	if w.opts.Waiting != nil {
		w.opts.Waiting(h)
	}
}

func (w *waiter) tookOver(h Holder) {
	if w.opts.TookOver != nil {
		w.opts.TookOver(h)
	}
}

// sleep waits one poll interval; it returns the error ending the wait.
func (w *waiter) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return w.ended(ctx)
	case <-t.C:
		return nil
	}
}

// ended is the error of a wait whose context ended.
func (w *waiter) ended(ctx context.Context) error {
	held := "held by another run"
	if w.last != nil {
		held = "held by " + w.last.String()
	}
	if w.parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("%w: waited %s for the lock of image %s, %s: wait for that run to end (imgpipe runs %s), or, if it is dead on another host, for its lease to run out",
			ErrLockTimeout, w.opts.Timeout, w.image, held, w.image)
	}
	return fmt.Errorf("lock image %s (%s; imgpipe runs %s shows it): %w", w.image, held, w.image, ctx.Err())
}

// abandonRun marks the run of a holder that is gone as abandoned (only if
// it is still recorded as running).
func (c *Catalog) abandonRun(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, h Holder) error {
	if h.RunID <= 0 {
		return nil
	}
	msg := fmt.Sprintf("abandoned: its process (pid %d on host %s) is gone and another run took over the lock of %s", h.PID, h.Host, h.Image)
	_, err := ex.ExecContext(ctx, c.q("UPDATE runs SET status = ?, error = ?, ended_at = ? WHERE id = ? AND status = ?"),
		RunAbandoned, msg, c.nowText(), h.RunID, RunRunning)
	return err
}

// acquirePostgres polls pg_try_advisory_lock: a runner waiting for the lock
// does not keep a pooled connection busy (waiters holding connections could
// starve the holder of one and deadlock the pool).
func (l *Lock) acquirePostgres(ctx context.Context, w *waiter) error {
	c := l.c
	for {
		conn, err := c.db.Conn(ctx)
		if err != nil {
			return fmt.Errorf("lock image %s: %w", l.image, err)
		}
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", l.key).Scan(&got); err != nil {
			discard(conn) // we cannot know whether the session got the lock
			return fmt.Errorf("lock image %s: %w", l.image, err)
		}
		if got {
			// A row left by a previous holder means it never unlocked: it
			// died with its session. Its run is abandoned.
			var owner, acquired, expires string
			err := conn.QueryRowContext(ctx, "SELECT owner, acquired_at, expires_at FROM image_locks WHERE image = $1", l.image).Scan(&owner, &acquired, &expires)
			if err == nil && owner != l.owner {
				h := parseHolder(l.image, owner, acquired, expires)
				if err := c.abandonRun(ctx, conn, h); err != nil {
					discard(conn)
					return fmt.Errorf("lock image %s: mark the run of the previous holder abandoned: %w", l.image, err)
				}
				w.tookOver(h)
			}
			l.conn = conn
			// Record the holder for people looking; the advisory lock is what counts.
			_, _ = conn.ExecContext(ctx, `INSERT INTO image_locks (image, owner, acquired_at, expires_at) VALUES ($1, $2, $3, '')
				ON CONFLICT (image) DO UPDATE SET owner = excluded.owner, acquired_at = excluded.acquired_at, expires_at = ''`,
				l.image, l.owner, c.nowText())
			return nil
		}
		var owner, acquired, expires string
		if err := conn.QueryRowContext(ctx, "SELECT owner, acquired_at, expires_at FROM image_locks WHERE image = $1", l.image).Scan(&owner, &acquired, &expires); err == nil {
			w.saw(parseHolder(l.image, owner, acquired, expires))
		}
		conn.Close()
		if err := w.sleep(ctx, c.poll); err != nil {
			return err
		}
	}
}

// discard closes a connection for good instead of returning it to the pool,
// so a session that may hold an advisory lock is never reused.
func discard(conn *sql.Conn) {
	_ = conn.Raw(func(any) error { return driver.ErrBadConn })
	_ = conn.Close()
}

func (l *Lock) acquireSQLite(ctx context.Context, w *waiter) error {
	c := l.c
	for {
		var held, took *Holder
		err := c.tx(ctx, func(tx *sql.Tx) error {
			held, took = nil, nil
			now := c.now()
			var owner, acquired, expires string
			err := tx.QueryRowContext(ctx, "SELECT owner, acquired_at, expires_at FROM image_locks WHERE image = ?", l.image).Scan(&owner, &acquired, &expires)
			if errors.Is(err, sql.ErrNoRows) {
				_, err = tx.ExecContext(ctx, "INSERT INTO image_locks (image, owner, acquired_at, expires_at) VALUES (?, ?, ?, ?)",
					l.image, l.owner, fmtTime(now), fmtTime(now.Add(c.lease)))
				return err
			}
			if err != nil {
				return err
			}
			h := parseHolder(l.image, owner, acquired, expires)
			if !h.gone(now) {
				held = &h
				return nil
			}
			if _, err := tx.ExecContext(ctx, "UPDATE image_locks SET owner = ?, acquired_at = ?, expires_at = ? WHERE image = ? AND owner = ?",
				l.owner, fmtTime(now), fmtTime(now.Add(c.lease)), l.image, owner); err != nil {
				return err
			}
			took = &h
			return c.abandonRun(ctx, tx, h)
		})
		if err != nil {
			if ctx.Err() != nil {
				return w.ended(ctx)
			}
			return fmt.Errorf("lock image %s: %w", l.image, err)
		}
		if held == nil {
			if took != nil {
				w.tookOver(*took)
			}
			return nil
		}
		w.saw(*held)
		if err := w.sleep(ctx, c.poll); err != nil {
			return err
		}
	}
}

// SetRun records runID as the run holding the lock (StartRun does it for
// the locks WithImageLock holds in its context).
func (l *Lock) SetRun(ctx context.Context, runID int64) error {
	l.ownerMu.Lock()
	defer l.ownerMu.Unlock()
	rec := l.rec
	rec.Run = runID
	owner := rec.encode()
	var res sql.Result
	var err error
	if l.conn != nil {
		res, err = l.conn.ExecContext(ctx, "UPDATE image_locks SET owner = $1 WHERE image = $2 AND owner = $3", owner, l.image, l.owner)
	} else {
		res, err = l.c.db.ExecContext(ctx, "UPDATE image_locks SET owner = ? WHERE image = ? AND owner = ?", owner, l.image, l.owner)
	}
	if err != nil {
		return fmt.Errorf("record run %d on the lock of %s: %w", runID, l.image, err)
	}
	if n, _ := res.RowsAffected(); n == 0 && l.conn == nil {
		return fmt.Errorf("%w: %s", ErrLockNotHeld, l.image)
	}
	l.rec, l.owner = rec, owner
	return nil
}

// Holder returns who holds image's lock now, and false when nobody does.
func (c *Catalog) Holder(ctx context.Context, image string) (Holder, bool, error) {
	var owner, acquired, expires string
	err := c.db.QueryRowContext(ctx, c.q("SELECT owner, acquired_at, expires_at FROM image_locks WHERE image = ?"), image).Scan(&owner, &acquired, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return Holder{}, false, nil
	}
	if err != nil {
		return Holder{}, false, fmt.Errorf("read the lock of %s: %w", image, err)
	}
	return parseHolder(image, owner, acquired, expires), true, nil
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
			l.ownerMu.Lock()
			var res sql.Result
			res, err = l.c.db.ExecContext(ctx, "UPDATE image_locks SET expires_at = ? WHERE image = ? AND owner = ?",
				fmtTime(l.c.now().Add(l.c.lease)), l.image, l.owner)
			l.ownerMu.Unlock()
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
	l.ownerMu.Lock()
	owner := l.owner
	l.ownerMu.Unlock()
	if l.conn != nil {
		defer l.conn.Close() // after discard, a no-op
		_, _ = l.conn.ExecContext(ctx, "DELETE FROM image_locks WHERE image = $1 AND owner = $2", l.image, owner)
		var ok bool
		if err := l.conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", l.key).Scan(&ok); err != nil || !ok {
			discard(l.conn) // closing the session releases whatever it still holds
		}
		return nil
	}
	if _, err := l.c.db.ExecContext(ctx, "DELETE FROM image_locks WHERE image = ? AND owner = ?", l.image, owner); err != nil {
		return fmt.Errorf("unlock image %s: %w (it expires by itself after %s)", l.image, err, l.c.lease)
	}
	return nil
}

type heldLocksKey struct{}

// heldLocks returns the locks WithImageLock holds for the code running
// under ctx.
func heldLocks(ctx context.Context) []*Lock {
	ls, _ := ctx.Value(heldLocksKey{}).([]*Lock)
	return ls
}

// WithImageLock runs fn while holding the image's run lock. fn's context is
// cancelled if the lock is lost while it runs; a run started under it
// (StartRun) is recorded on the lock, so waiters see which run holds it.
func (c *Catalog) WithImageLock(ctx context.Context, image, owner string, fn func(ctx context.Context) error) error {
	l, err := c.LockImage(ctx, image, owner)
	if err != nil {
		return err
	}
	fctx, cancel := context.WithCancelCause(ctx)
	fctx = context.WithValue(fctx, heldLocksKey{}, append(append([]*Lock(nil), heldLocks(ctx)...), l))
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

// ReapAbandoned finds image locks whose holder is gone without unlocking
// (SQLite: its lease ran out, or it was on this host and its process is not
// alive; PostgreSQL: its session ended, so its advisory lock is free),
// removes them and marks their runs RunAbandoned. It returns how many it
// reaped. Taking such a lock over does the same; this is for when nobody
// wants the lock yet (imgpipe runs).
func (c *Catalog) ReapAbandoned(ctx context.Context) (int, error) {
	type row struct{ image, owner, acquired, expires string }
	rows, err := c.db.QueryContext(ctx, "SELECT image, owner, acquired_at, expires_at FROM image_locks")
	if err != nil {
		return 0, fmt.Errorf("read image locks: %w", err)
	}
	var locks []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.image, &r.owner, &r.acquired, &r.expires); err != nil {
			rows.Close()
			return 0, err
		}
		locks = append(locks, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, r := range locks {
		h := parseHolder(r.image, r.owner, r.acquired, r.expires)
		var reaped bool
		if c.dialect == dialectPostgres {
			reaped, err = c.reapPostgres(ctx, r.image, r.owner, h)
		} else {
			if !h.gone(c.now()) {
				continue
			}
			err = c.tx(ctx, func(tx *sql.Tx) error {
				res, err := tx.ExecContext(ctx, "DELETE FROM image_locks WHERE image = ? AND owner = ?", r.image, r.owner)
				if err != nil {
					return err
				}
				if k, _ := res.RowsAffected(); k == 0 {
					return nil // someone took it over meanwhile
				}
				reaped = true
				return c.abandonRun(ctx, tx, h)
			})
		}
		if err != nil {
			return n, fmt.Errorf("reap the lock of %s: %w", r.image, err)
		}
		if reaped {
			n++
		}
	}
	return n, nil
}

// reapPostgres reaps one image_locks row if its advisory lock is free (its
// holder's session is gone): taken briefly, the row checked and removed,
// the run abandoned, the lock released.
func (c *Catalog) reapPostgres(ctx context.Context, image, owner string, h Holder) (bool, error) {
	conn, err := c.db.Conn(ctx)
	if err != nil {
		return false, err
	}
	defer conn.Close()
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", advisoryKey(image)).Scan(&got); err != nil {
		discard(conn)
		return false, err
	}
	if !got {
		return false, nil // held: its holder is alive
	}
	reaped := false
	res, err := conn.ExecContext(ctx, "DELETE FROM image_locks WHERE image = $1 AND owner = $2", image, owner)
	if err == nil {
		if k, _ := res.RowsAffected(); k > 0 {
			reaped = true
			err = c.abandonRun(ctx, conn, h)
		}
	}
	var ok bool
	if uerr := conn.QueryRowContext(ctx, "SELECT pg_advisory_unlock($1)", advisoryKey(image)).Scan(&ok); uerr != nil || !ok {
		discard(conn)
	}
	return reaped, err
}
