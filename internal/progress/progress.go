// Package progress is the small seam through which long operations report how
// far they are. Libraries count; only cmd/ draws. Heartbeat and Steps render
// the lines cmd/ prints without a terminal; they hand each line to a function.
package progress

import "sync/atomic"

// Func is called with the work done so far and the total (in the unit the
// caller documents, usually bytes). It must be cheap and safe for concurrent use.
// A nil Func is valid and reports nothing.
type Func func(done, total int64)

// Counter accumulates progress from several goroutines and forwards it to a Func.
type Counter struct {
	done  atomic.Int64
	total atomic.Int64
	fn    Func
}

// NewCounter returns a Counter reporting to fn (which may be nil).
func NewCounter(total int64, fn Func) *Counter {
	c := &Counter{fn: fn}
	c.total.Store(total)
	return c
}

// Add records n more units done and reports.
func (c *Counter) Add(n int64) {
	if c == nil {
		return
	}
	d := c.done.Add(n)
	if c.fn != nil {
		c.fn(d, c.total.Load())
	}
}

// SetTotal changes the expected total (for example once the allocation map is known).
func (c *Counter) SetTotal(t int64) {
	if c == nil {
		return
	}
	c.total.Store(t)
}

// Done returns the units counted so far.
func (c *Counter) Done() int64 {
	if c == nil {
		return 0
	}
	return c.done.Load()
}
