package drift

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"

	"imgpipe/internal/progress"
)

var (
	errReplaced = errors.New("replaced by another file while being walked")
	errChanged  = errors.New("changed while being read")
)

// Stats count what a walk did.
type Stats struct {
	Entries     int   `json:"entries"`
	Dirs        int   `json:"dirs"`
	Hashed      int   `json:"hashed"`
	BytesHashed int64 `json:"bytes_hashed"`
	// Reused counts files a quick check trusted without reading them.
	Reused int `json:"reused,omitempty"`
}

func (s *Stats) add(o Stats) {
	s.Entries += o.Entries
	s.Dirs += o.Dirs
	s.Hashed += o.Hashed
	s.BytesHashed += o.BytesHashed
	s.Reused += o.Reused
}

// walker walks the paths of a tree in parallel: directories and batches of
// files to hash are tasks on one shared stack, taken by a bounded number of
// workers.
type walker struct {
	root     string
	paths    []string
	m        *matcher
	alg      string
	workers  int
	progress *progress.Counter
	// trust, in a quick check, returns the baseline's hash for an entry
	// whose stat matches the baseline (and is not racy).
	trust func(e *Entry) ([HashSize]byte, bool)
	// visit, when set, receives every entry instead of the result list (a
	// check compares on the fly and keeps no copy of the live tree).
	visit func(e *Entry, out *workerOut)

	mu      sync.Mutex
	cond    *sync.Cond
	stack   []task
	pending int
	links   linkTable
}

type task struct {
	dir    *dirHandle // parent directory (dir task) or directory of the files (batch)
	name   string     // dir task: the name of the directory in dir
	rel    string     // dir task: its path relative to the root
	expect uint64     // dir task: the inode lstat saw
	batch  []pending
}

type pending struct {
	name string
	e    Entry
	st   sysStat
}

type workerOut struct {
	entries  []Entry
	changes  []FileChange
	problems []Problem
	// unlisted are directories that could not be listed: what was below
	// them is unknown, not removed.
	unlisted []string
	stats    Stats
}

func (w *walker) record(e *Entry, out *workerOut) {
	out.stats.Entries++
	if w.visit != nil {
		w.visit(e, out)
		return
	}
	out.entries = append(out.entries, *e)
}

const (
	batchFiles = 32
	batchBytes = 4 << 20
)

func (w *walker) push(t task) {
	w.mu.Lock()
	w.stack = append(w.stack, t)
	w.pending++
	w.mu.Unlock()
	w.cond.Signal()
}

func (w *walker) pop() (task, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.stack) == 0 && w.pending > 0 {
		w.cond.Wait()
	}
	if len(w.stack) == 0 {
		return task{}, false
	}
	t := w.stack[len(w.stack)-1]
	w.stack = w.stack[:len(w.stack)-1]
	return t, true
}

func (w *walker) done() {
	w.mu.Lock()
	w.pending--
	last := w.pending == 0
	w.mu.Unlock()
	if last {
		w.cond.Broadcast()
	}
}

// run walks every path and returns what the workers gathered, entries and
// changes sorted by path.
func (w *walker) run(ctx context.Context) (*workerOut, error) {
	w.cond = sync.NewCond(&w.mu)
	w.links.m = map[linkKey]*linkState{}
	if w.workers <= 0 {
		w.workers = runtime.NumCPU()
	}
	root, err := openRootDir(w.root)
	if err != nil {
		return nil, fmt.Errorf("open root: %w", err)
	}
	var seed workerOut
	for _, p := range w.paths {
		w.seed(root, p, &seed)
	}
	root.release()

	outs := make([]workerOut, w.workers)
	var wg sync.WaitGroup
	for i := range outs {
		wg.Add(1)
		go func(out *workerOut) {
			defer wg.Done()
			h, _ := newHasher(w.alg)
			buf := make([]byte, 256<<10)
			for {
				t, ok := w.pop()
				if !ok {
					return
				}
				if ctx.Err() == nil {
					if t.batch != nil {
						w.hashBatch(t.dir, t.batch, h, buf, out)
					} else {
						w.walkDir(t, h, buf, out)
					}
				}
				t.dir.release()
				w.done()
			}
		}(&outs[i])
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n := len(seed.entries)
	for _, o := range outs {
		n += len(o.entries)
	}
	res := &seed
	if n > len(seed.entries) {
		res.entries = append(make([]Entry, 0, n), seed.entries...)
	}
	for i := range outs {
		o := &outs[i]
		res.entries = append(res.entries, o.entries...)
		o.entries = nil
		res.changes = append(res.changes, o.changes...)
		res.problems = append(res.problems, o.problems...)
		res.unlisted = append(res.unlisted, o.unlisted...)
		res.stats.add(o.stats)
	}
	slices.SortFunc(res.entries, func(a, b Entry) int { return strings.Compare(string(a.Path), string(b.Path)) })
	slices.SortFunc(res.changes, func(a, b FileChange) int { return strings.Compare(string(a.Path), string(b.Path)) })
	slices.SortFunc(res.problems, func(a, b Problem) int { return strings.Compare(string(a.Path), string(b.Path)) })
	return res, nil
}

// seed records the starting point p and queues it. Intermediate directories
// are opened without following symlinks and are not recorded.
func (w *walker) seed(root *dirHandle, p string, out *workerOut) {
	if p == "." {
		root.acquire()
		w.push(task{dir: root, name: ".", rel: ""})
		return
	}
	elems := strings.Split(p, "/")
	parent := root
	parent.acquire()
	for _, el := range elems[:len(elems)-1] {
		d, _, err := parent.openDir(el)
		parent.release()
		if err != nil {
			if !isNotExist(err) {
				out.problems = append(out.problems, Problem{Path: Name(p), Err: err.Error()})
			}
			return
		}
		parent = d
	}
	name := elems[len(elems)-1]
	if w.m.excluded(p) {
		parent.release()
		return
	}
	st, err := parent.lstat(name)
	if err != nil {
		if !isNotExist(err) {
			out.problems = append(out.problems, Problem{Path: Name(p), Err: err.Error()})
		}
		parent.release()
		return
	}
	// A starting point is examined like any entry of its parent directory.
	w.handleEntry(parent, name, p, st, out, nil)
	parent.release()
}

// walkDir lists one directory, records its entries and queues its
// subdirectories and the files to hash.
func (w *walker) walkDir(t task, h hashWriter, buf []byte, out *workerOut) {
	var d *dirHandle
	if t.name == "." && t.rel == "" {
		d = t.dir
		d.acquire()
	} else {
		nd, st, err := t.dir.openDir(t.name)
		if err != nil {
			out.problems = append(out.problems, Problem{Path: Name(t.rel), Err: describe(err)})
			out.unlisted = append(out.unlisted, t.rel)
			return
		}
		if st.ino != t.expect {
			nd.release()
			out.problems = append(out.problems, Problem{Path: Name(t.rel), Err: errReplaced.Error()})
			out.unlisted = append(out.unlisted, t.rel)
			return
		}
		d = nd
	}
	defer d.release()
	names, err := d.names(buf)
	if err != nil {
		out.problems = append(out.problems, Problem{Path: Name(t.rel), Err: "list directory: " + describe(err)})
		out.unlisted = append(out.unlisted, t.rel)
	}
	var batch []pending
	var batchSize int64
	prefix := t.rel
	if prefix != "" {
		prefix += "/"
	}
	for _, name := range names {
		rel := prefix + name
		if w.m.excluded(rel) {
			continue
		}
		st, err := d.lstat(name)
		if err != nil {
			if isNotExist(err) {
				out.problems = append(out.problems, Problem{Path: Name(rel), Err: "vanished while being walked"})
			} else {
				out.problems = append(out.problems, Problem{Path: Name(rel), Err: describe(err)})
			}
			continue
		}
		if p := w.handleEntry(d, name, rel, st, out, &batch); p != nil {
			batchSize += p.st.size
			if len(batch) >= batchFiles || batchSize >= batchBytes {
				d.acquire()
				w.push(task{dir: d, batch: batch})
				batch, batchSize = nil, 0
			}
		}
	}
	if len(batch) > 0 {
		w.hashBatch(d, batch, h, buf, out)
	}
}

// handleEntry records one entry. Directories are queued; regular files that
// need hashing are appended to *batch (or, without a batch, queued alone).
func (w *walker) handleEntry(d *dirHandle, name, rel string, st sysStat, out *workerOut, batch *[]pending) *pending {
	e := Entry{
		Path: Name(rel), Type: st.typ, Mode: st.perm, UID: st.uid, GID: st.gid,
		Size: st.size, Mtime: st.mtime, Ctime: st.ctime, Dev: st.dev, Ino: st.ino,
		Nlink: st.nlink, Rdev: st.rdev,
	}
	if st.typ == TypeDir {
		e.Size = 0
	}
	rec := w.m.included(rel)
	switch st.typ {
	case TypeDir:
		out.stats.Dirs++
		d.acquire()
		w.push(task{dir: d, name: name, rel: rel, expect: st.ino})
	case TypeSymlink:
		if rec {
			t, err := d.readlink(name)
			if err != nil {
				e.Err = describe(err)
				out.problems = append(out.problems, Problem{Path: e.Path, Err: "read link: " + e.Err})
			}
			e.Link = t
		}
	case TypeRegular:
		if !rec {
			return nil
		}
		if w.trust != nil {
			if sum, ok := w.trust(&e); ok {
				e.Hash, e.HasHash = sum, true
				out.stats.Reused++
				break
			}
		}
		p := pending{name: name, e: e, st: st}
		if batch == nil {
			d.acquire()
			w.push(task{dir: d, batch: []pending{p}})
			return nil
		}
		*batch = append(*batch, p)
		return &(*batch)[len(*batch)-1]
	}
	if rec {
		w.record(&e, out)
		w.progress.Add(1)
	}
	return nil
}

type hashWriter = interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
	Reset()
	Size() int
	BlockSize() int
}

func (w *walker) hashBatch(d *dirHandle, batch []pending, h hashWriter, buf []byte, out *workerOut) {
	for i := range batch {
		p := &batch[i]
		e := p.e
		var st sysStat
		var sum [HashSize]byte
		var err error
		if p.st.nlink > 1 {
			st, sum, err = w.links.hash(linkKey{p.st.dev, p.st.ino}, func() (sysStat, [HashSize]byte, error) {
				return d.hashFile(p.name, p.st, h, buf)
			}, &out.stats)
		} else {
			st, sum, err = d.hashFile(p.name, p.st, h, buf)
			if err == nil {
				out.stats.Hashed++
				out.stats.BytesHashed += st.size
			}
		}
		switch {
		case err == nil:
			e.Hash, e.HasHash = sum, true
		case isNotExist(err):
			out.problems = append(out.problems, Problem{Path: e.Path, Err: "vanished while being walked"})
			continue
		default:
			e.Err = describe(err)
			out.problems = append(out.problems, Problem{Path: e.Path, Err: e.Err})
			if err == errChanged || err == errReplaced {
				// Record what the file is now, not what lstat saw before.
				e.Type, e.Mode, e.UID, e.GID, e.Size = st.typ, st.perm, st.uid, st.gid, st.size
				e.Mtime, e.Ctime, e.Ino = st.mtime, st.ctime, st.ino
			}
		}
		w.record(&e, out)
		w.progress.Add(1)
	}
}

// describe shortens system errors for reports.
func describe(err error) string {
	var pe interface{ Unwrap() error }
	for errors.As(err, &pe) && pe.Unwrap() != nil {
		err = pe.Unwrap()
	}
	return err.Error()
}

// Hard links: hashed once per (device, inode) within one walk.
type linkKey struct{ dev, ino uint64 }

type linkState struct {
	done chan struct{}
	st   sysStat
	sum  [HashSize]byte
	err  error
}

type linkTable struct {
	mu sync.Mutex
	m  map[linkKey]*linkState
}

func (t *linkTable) hash(k linkKey, f func() (sysStat, [HashSize]byte, error), stats *Stats) (sysStat, [HashSize]byte, error) {
	t.mu.Lock()
	s, ok := t.m[k]
	if !ok {
		s = &linkState{done: make(chan struct{})}
		t.m[k] = s
	}
	t.mu.Unlock()
	if ok {
		<-s.done
		return s.st, s.sum, s.err
	}
	s.st, s.sum, s.err = f()
	if s.err == nil {
		stats.Hashed++
		stats.BytesHashed += s.st.size
	}
	close(s.done)
	return s.st, s.sum, s.err
}
