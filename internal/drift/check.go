package drift

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"imgpipe/internal/progress"
)

// Depth is how thoroughly Check looks at file contents.
type Depth string

// Check depths.
const (
	// Full hashes every regular file.
	Full Depth = "full"
	// Quick re-hashes only files whose size, mtime, ctime or inode differ
	// from the baseline (see the package documentation for what it trusts).
	Quick Depth = "quick"
)

// RacyWindow: a quick check re-hashes files whose mtime or ctime is not at
// least this much older than the baseline's capture time, because a change
// within the same timestamp tick would not be visible in their stat.
const RacyWindow = 2 * time.Second

// CheckOptions tune Check.
type CheckOptions struct {
	Depth Depth
	// Ignore adds globs (same syntax as Rules) for expected churn; matching
	// paths are neither walked nor compared.
	Ignore []string
	// Workers bounds the goroutines walking and hashing; 0 means the number of CPUs.
	Workers int
	// Progress receives entries examined out of the baseline's entry count.
	Progress progress.Func
}

// File change kinds.
const (
	Added   = "added"
	Removed = "removed"
	Changed = "changed"
)

// Attributes named in FileChange.Changed.
const (
	AttrType    = "type"
	AttrContent = "content"
	AttrMode    = "mode"
	AttrOwner   = "owner"
	AttrSize    = "size"
	AttrTarget  = "target"
	AttrDevice  = "device"
)

// FileState is the compared state of a file, for reports.
type FileState struct {
	Type FileType `json:"type"`
	Mode string   `json:"mode"` // octal, e.g. "0644"
	UID  uint32   `json:"uid"`
	GID  uint32   `json:"gid"`
	Size int64    `json:"size,omitempty"`
	Link Name     `json:"target,omitempty"`
	Hash string   `json:"hash,omitempty"` // hex, first 16 bytes
}

// FileChange is one added, removed or changed entry.
type FileChange struct {
	Path Name   `json:"path"`
	Kind string `json:"kind"`
	// Changed names the attributes that differ (changed entries only):
	// type, content, mode, owner, size, target, device.
	Changed []string   `json:"changed,omitempty"`
	Old     *FileState `json:"old,omitempty"`
	New     *FileState `json:"new,omitempty"`
}

// PackageChange is one package added, removed or changed in version.
type PackageChange struct {
	Manager string `json:"manager"`
	Name    string `json:"name"`
	Arch    string `json:"arch,omitempty"`
	Kind    string `json:"kind"`
	Old     string `json:"old,omitempty"`
	New     string `json:"new,omitempty"`
}

// ServiceChange is one unit whose state changed, appeared or disappeared.
type ServiceChange struct {
	Unit string `json:"unit"`
	Kind string `json:"kind"`
	Old  string `json:"old,omitempty"` // state, with "wanted by" targets
	New  string `json:"new,omitempty"`
}

// Summary counts a report's findings.
type Summary struct {
	FilesAdded   int `json:"files_added"`
	FilesRemoved int `json:"files_removed"`
	FilesChanged int `json:"files_changed"`
	Packages     int `json:"packages"`
	Services     int `json:"services"`
	Problems     int `json:"problems"`
}

// Report is the result of a drift check. It is self-contained and small
// enough to send from an agent (use Limit to bound it); it holds no secrets.
type Report struct {
	Identity   *Identity `json:"identity,omitempty"`
	Depth      Depth     `json:"depth"`
	Hash       string    `json:"hash"`
	BaselineAt time.Time `json:"baseline_at"`
	CheckedAt  time.Time `json:"checked_at"`
	DurationMS int64     `json:"duration_ms"`
	// Drifted is true when any file, package or service differs.
	Drifted    bool              `json:"drifted"`
	Summary    Summary           `json:"summary"`
	Stats      Stats             `json:"stats"`
	Files      []FileChange      `json:"files,omitempty"`
	Packages   []PackageChange   `json:"packages,omitempty"`
	Services   []ServiceChange   `json:"services,omitempty"`
	Problems   []Problem         `json:"problems,omitempty"`
	Collectors []CollectorStatus `json:"collectors,omitempty"`
	// Truncated counts findings dropped by Limit.
	Truncated int `json:"truncated,omitempty"`
}

// Limit keeps at most n file changes and n problems (the summary still
// counts them all) and records how many were dropped.
func (r *Report) Limit(n int) {
	if len(r.Files) > n {
		r.Truncated += len(r.Files) - n
		r.Files = r.Files[:n]
	}
	if len(r.Problems) > n {
		r.Truncated += len(r.Problems) - n
		r.Problems = r.Problems[:n]
	}
}

// Check compares the tree at root with the baseline.
func Check(ctx context.Context, root string, base *Baseline, opts CheckOptions) (*Report, error) {
	start := time.Now()
	depth := opts.Depth
	if depth == "" {
		depth = Full
	}
	if depth != Full && depth != Quick {
		return nil, fmt.Errorf("check depth %q: use %s or %s", depth, Full, Quick)
	}
	paths, err := cleanPaths(base.Rules.Paths)
	if err != nil {
		return nil, fmt.Errorf("baseline rules: %w", err)
	}
	m, err := newMatcher(base.Rules.Include, append(slices.Clone(base.Rules.Exclude), opts.Ignore...))
	if err != nil {
		return nil, err
	}
	w := &walker{root: root, paths: paths, m: m, alg: base.Hash, workers: opts.Workers,
		progress: progress.NewCounter(int64(len(base.Files)), opts.Progress)}
	find := func(p Name) (int, bool) {
		return slices.BinarySearchFunc(base.Files, p, func(b Entry, p Name) int { return strings.Compare(string(b.Path), string(p)) })
	}
	if depth == Quick {
		racy := base.CapturedAt.Add(-RacyWindow).UnixNano()
		w.trust = func(e *Entry) ([HashSize]byte, bool) {
			i, ok := find(e.Path)
			if !ok {
				return [HashSize]byte{}, false
			}
			e.bidx = int32(i + 1)
			b := &base.Files[i]
			if !b.HasHash || b.Type != TypeRegular || b.Size != e.Size || b.Mtime != e.Mtime ||
				b.Ctime != e.Ctime || b.Ino != e.Ino || b.Mtime >= racy || b.Ctime >= racy {
				return [HashSize]byte{}, false
			}
			return b.Hash, true
		}
	}
	// Live entries are compared as they come and not kept: memory is the
	// baseline plus one bit per baseline entry.
	seen := make([]atomic.Uint32, (len(base.Files)+31)/32)
	w.visit = func(e *Entry, out *workerOut) {
		i, ok := int(e.bidx)-1, e.bidx > 0
		if !ok {
			i, ok = find(e.Path)
		}
		if !ok {
			out.changes = append(out.changes, FileChange{Path: e.Path, Kind: Added, New: state(e)})
			return
		}
		seen[i/32].Or(1 << (i % 32))
		b := &base.Files[i]
		if attrs := compareEntries(b, e); len(attrs) > 0 {
			out.changes = append(out.changes, FileChange{Path: b.Path, Kind: Changed, Changed: attrs, Old: state(b), New: state(e)})
		}
	}
	res, err := w.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	r := &Report{Identity: base.Identity, Depth: depth, Hash: base.Hash, BaselineAt: base.CapturedAt,
		CheckedAt: start.UTC(), Stats: res.stats, Problems: res.problems}
	r.Files = res.changes
	unknown, err := newMatcher(nil, nil)
	if err != nil {
		return nil, err
	}
	for _, u := range res.unlisted {
		if u != "" {
			unknown.exclude = append(unknown.exclude, glob{raw: u, prefix: u})
		}
	}
	var removed []FileChange
	for i := range base.Files {
		if seen[i/32].Load()&(1<<(i%32)) != 0 {
			continue
		}
		b := &base.Files[i]
		if m.underExcluded(string(b.Path)) || !m.included(string(b.Path)) {
			continue
		}
		if len(unknown.exclude) > 0 && unknown.excluded(string(b.Path)) && !unknown.matchesExactly(string(b.Path)) {
			continue // below a directory that could not be listed: reported as a problem
		}
		removed = append(removed, FileChange{Path: b.Path, Kind: Removed, Old: state(b)})
	}
	if len(removed) > 0 {
		r.Files = append(r.Files, removed...)
		slices.SortFunc(r.Files, func(a, b FileChange) int { return strings.Compare(string(a.Path), string(b.Path)) })
	}
	pkgs, svcs, cs := collectSystem(root)
	r.Collectors = cs
	r.Packages = diffPackages(base.Packages, pkgs, base.Collectors, cs)
	r.Services = diffServices(base.Services, svcs, base.Collectors, cs)
	for _, f := range r.Files {
		switch f.Kind {
		case Added:
			r.Summary.FilesAdded++
		case Removed:
			r.Summary.FilesRemoved++
		default:
			r.Summary.FilesChanged++
		}
	}
	r.Summary.Packages = len(r.Packages)
	r.Summary.Services = len(r.Services)
	r.Summary.Problems = len(r.Problems)
	r.Drifted = len(r.Files)+len(r.Packages)+len(r.Services) > 0
	r.DurationMS = time.Since(start).Milliseconds()
	return r, nil
}

func state(e *Entry) *FileState {
	s := &FileState{Type: e.Type, Mode: fmt.Sprintf("%04o", e.Mode), UID: e.UID, GID: e.GID, Link: Name(e.Link)}
	if e.Type == TypeRegular || e.Type == TypeSymlink {
		s.Size = e.Size
	}
	if e.HasHash {
		s.Hash = hex.EncodeToString(e.Hash[:16])
	}
	return s
}

// compareEntries names the attributes that differ. mtime, ctime, inode and
// link count are not drift by themselves (they are the quick check's hints).
func compareEntries(b, l *Entry) []string {
	if b.Type != l.Type {
		return []string{AttrType}
	}
	var a []string
	if b.HasHash && l.HasHash && b.Hash != l.Hash {
		a = append(a, AttrContent)
	}
	if b.Mode != l.Mode {
		a = append(a, AttrMode)
	}
	if b.UID != l.UID || b.GID != l.GID {
		a = append(a, AttrOwner)
	}
	if (b.Type == TypeRegular || b.Type == TypeSymlink) && b.Size != l.Size {
		a = append(a, AttrSize)
	}
	if b.Link != l.Link {
		a = append(a, AttrTarget)
	}
	if b.Rdev != l.Rdev {
		a = append(a, AttrDevice)
	}
	return a
}

func collectorOK(cs []CollectorStatus, name string) bool {
	for _, c := range cs {
		if c.Name == name {
			return c.Status == CollectorOK || c.Status == CollectorAbsent
		}
	}
	return false
}

func diffPackages(base, live []Package, baseCS, liveCS []CollectorStatus) []PackageChange {
	var out []PackageChange
	for _, mgr := range []string{"dpkg", "rpm"} {
		if !collectorOK(baseCS, mgr) || !collectorOK(liveCS, mgr) {
			continue // reported through Collectors; no comparison possible
		}
		old := map[string]Package{}
		for _, p := range base {
			if p.Manager == mgr {
				old[p.key()] = p
			}
		}
		for _, p := range live {
			if p.Manager != mgr {
				continue
			}
			o, ok := old[p.key()]
			delete(old, p.key())
			switch {
			case !ok:
				out = append(out, PackageChange{Manager: mgr, Name: p.Name, Arch: p.Arch, Kind: Added, New: pkgVersion(p)})
			case pkgVersion(o) != pkgVersion(p):
				out = append(out, PackageChange{Manager: mgr, Name: p.Name, Arch: p.Arch, Kind: Changed, Old: pkgVersion(o), New: pkgVersion(p)})
			}
		}
		for _, o := range old {
			out = append(out, PackageChange{Manager: mgr, Name: o.Name, Arch: o.Arch, Kind: Removed, Old: pkgVersion(o)})
		}
	}
	slices.SortFunc(out, func(a, b PackageChange) int {
		return strings.Compare(a.Manager+"\x00"+a.Name+"\x00"+a.Arch, b.Manager+"\x00"+b.Name+"\x00"+b.Arch)
	})
	return out
}

func pkgVersion(p Package) string {
	if p.Status != "" {
		return p.Version + " (" + p.Status + ")"
	}
	return p.Version
}

func svcState(s Service) string {
	if len(s.WantedBy) == 0 {
		return s.State
	}
	return s.State + " (" + strings.Join(s.WantedBy, ",") + ")"
}

func diffServices(base, live []Service, baseCS, liveCS []CollectorStatus) []ServiceChange {
	if !collectorOK(baseCS, "systemd") || !collectorOK(liveCS, "systemd") {
		return nil
	}
	old := map[string]Service{}
	for _, s := range base {
		old[s.Unit] = s
	}
	var out []ServiceChange
	for _, s := range live {
		o, ok := old[s.Unit]
		delete(old, s.Unit)
		switch {
		case !ok:
			out = append(out, ServiceChange{Unit: s.Unit, Kind: Added, New: svcState(s)})
		case svcState(o) != svcState(s):
			out = append(out, ServiceChange{Unit: s.Unit, Kind: Changed, Old: svcState(o), New: svcState(s)})
		}
	}
	for _, o := range old {
		out = append(out, ServiceChange{Unit: o.Unit, Kind: Removed, Old: svcState(o)})
	}
	slices.SortFunc(out, func(a, b ServiceChange) int { return strings.Compare(a.Unit, b.Unit) })
	return out
}
