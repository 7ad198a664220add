package disk

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// An output being written lives under a recognisable name next to its
// target, ".NAME.imgpipe-partial-RANDOM", and its writer holds an exclusive
// lock on it for as long as it writes. A process killed with SIGKILL (or a
// machine that lost power) leaves the file behind, possibly many GiB; the
// next conversion to the same target finds such files, and removes those
// whose lock nobody holds. A file another conversion is still writing is
// left alone.

const partialMarker = ".imgpipe-partial-"

// partialFile is an output written under a temporary name, moved into
// place by commit.
type partialFile struct {
	*os.File
	final string
	done  bool
}

// partialPattern is the glob of the partial files of target.
func partialPattern(target string) string {
	dir, base := filepath.Split(target)
	return filepath.Join(dir, "."+escapeGlob(base)+partialMarker+"*")
}

func escapeGlob(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`)
	return r.Replace(s)
}

// removeStalePartials removes the partial files of target that no live
// writer holds, and returns their names.
func removeStalePartials(target string) ([]string, error) {
	names, err := filepath.Glob(partialPattern(target))
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, n := range names {
		if ok, err := removeIfStale(n); err == nil && ok {
			removed = append(removed, n)
		}
	}
	return removed, nil
}

// createPartial starts writing target under a partial name, locked, after
// removing stale partial files of the same target.
func createPartial(target string, perm os.FileMode) (*partialFile, []string, error) {
	removed, _ := removeStalePartials(target) // best effort: a leftover never blocks a new run
	dir, base := filepath.Split(target)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+partialMarker+"*")
	if err != nil {
		return nil, removed, fmt.Errorf("create the temporary file for %s: %w", target, err)
	}
	if err := lockPartial(f); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, removed, fmt.Errorf("lock %s: %w", f.Name(), err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, removed, err
	}
	return &partialFile{File: f, final: target}, removed, nil
}

// commit flushes the data to stable storage (once, at the end) and moves
// the file into place.
func (p *partialFile) commit() error {
	if p.done {
		return fmt.Errorf("%s already committed or aborted", p.final)
	}
	p.done = true
	name := p.Name()
	if err := p.Sync(); err != nil {
		p.Close()
		os.Remove(name)
		return fmt.Errorf("sync %s: %w", p.final, err)
	}
	if err := os.Rename(name, p.final); err != nil {
		p.Close()
		os.Remove(name)
		return fmt.Errorf("move %s into place: %w", p.final, err)
	}
	// Close (and so unlock) only after the rename: a cleaner never sees an
	// unlocked, complete partial file.
	if err := p.Close(); err != nil {
		return fmt.Errorf("close %s: %w", p.final, err)
	}
	if d, err := os.Open(filepath.Dir(p.final)); err == nil {
		_ = d.Sync() // some file systems cannot sync a directory; the rename stands
		d.Close()
	}
	return nil
}

// abort discards the file. It does nothing after commit.
func (p *partialFile) abort() {
	if p.done {
		return
	}
	p.done = true
	name := p.Name()
	p.Close()
	os.Remove(name)
}
