package server

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"imgpipe/internal/catalog"
)

// reportQueue is the group commit of agent reports. A handler hands its
// report in and waits; the writer takes every report waiting (up to
// catalog.MaxReportBatch), checks their credentials with one look-up and
// stores them in one transaction, then answers each. A report is acknowledged (202) only after the transaction
// holding it committed, so a server killed at any point has lost no
// report it accepted: the agents of unanswered ones send them again.
// Batches form by themselves: while one commits, the next one queues.
type reportQueue struct {
	cat     *catalog.Catalog
	in      chan *pendingReport
	writers int
	timeout time.Duration // of one batch's transaction
	observe func(n int, d time.Duration, err error)

	stop context.CancelFunc
	wg   sync.WaitGroup

	waiting  atomic.Int64 // reports submitted and not yet answered
	lastSent atomic.Int64 // when the last report was submitted (UnixNano)
}

// busy reports whether agents are reporting: a report is waiting for its
// commit or one came within the last recent.
func (q *reportQueue) busy(now time.Time, recent time.Duration) bool {
	return q.waiting.Load() > 0 || now.UnixNano()-q.lastSent.Load() < int64(recent)
}

type pendingReport struct {
	rep  catalog.AgentReport
	done chan result
}

// result is a report's outcome: the host its credential was issued to
// ("" for none; the report was stored when it is the report's host), or
// the error that failed its batch.
type result struct {
	owner string
	err   error
}

// errQueueFull: more reports are waiting than the queue holds.
var errQueueFull = errors.New("intake queue full")

// QueueDepth bounds the reports waiting for a commit (beyond it agents get
// 503 with Retry-After).
const QueueDepth = 4096

func newReportQueue(cat *catalog.Catalog, writers int, observe func(int, time.Duration, error)) *reportQueue {
	ctx, stop := context.WithCancel(context.Background())
	q := &reportQueue{cat: cat, in: make(chan *pendingReport, QueueDepth), writers: writers, timeout: 30 * time.Second, observe: observe, stop: stop}
	for range writers {
		q.wg.Add(1)
		go q.run(ctx)
	}
	return q
}

// submit queues a report and waits until its batch committed or failed,
// and returns the credential's owner. A ctx that ends first returns its
// error; the report may still be committed.
func (q *reportQueue) submit(ctx context.Context, rep catalog.AgentReport) (string, error) {
	p := &pendingReport{rep: rep, done: make(chan result, 1)}
	q.lastSent.Store(time.Now().UnixNano())
	q.waiting.Add(1)
	defer q.waiting.Add(-1)
	select {
	case q.in <- p:
	default:
		return "", errQueueFull
	}
	select {
	case r := <-p.done:
		return r.owner, r.err
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

func (q *reportQueue) run(ctx context.Context) {
	defer q.wg.Done()
	batch := make([]*pendingReport, 0, catalog.MaxReportBatch)
	reps := make([]catalog.AgentReport, 0, catalog.MaxReportBatch)
	for {
		var first *pendingReport
		select {
		case first = <-q.in:
		case <-ctx.Done():
			return
		}
		batch, reps = append(batch[:0], first), append(reps[:0], first.rep)
	gather:
		for len(batch) < catalog.MaxReportBatch {
			select {
			case p := <-q.in:
				batch, reps = append(batch, p), append(reps, p.rep)
			default:
				break gather
			}
		}
		t0 := time.Now()
		bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), q.timeout)
		owners, err := q.cat.RecordAgentReports(bctx, reps)
		cancel()
		if q.observe != nil {
			q.observe(len(batch), time.Since(t0), err)
		}
		for i, p := range batch {
			if err != nil {
				p.done <- result{err: err}
			} else {
				p.done <- result{owner: owners[i]}
			}
		}
	}
}

// close stops the writers once the batch they hold is answered; reports
// still queued are answered with an error (their agents retry).
func (q *reportQueue) close() {
	q.stop()
	q.wg.Wait()
	for {
		select {
		case p := <-q.in:
			p.done <- result{err: errors.New("server shutting down")}
		default:
			return
		}
	}
}
