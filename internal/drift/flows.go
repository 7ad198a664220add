package drift

// The baseline and drift verbs' flows, one call each for the CLI: capture
// a tree (identity, rules, baseline file), and the answers as text.

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strings"
	"time"

	"imgpipe/internal/progress"
	"imgpipe/internal/units"
)

// TreeCapture is a capture of the tree at Root: the identity written into
// it (unless Identity is nil), then its baseline written to Out.
type TreeCapture struct {
	Root string
	// Out is the baseline file; default etc/imgpipe/baseline.bin (or the
	// Windows state folder) inside Root.
	Out string
	// Identity is written into the tree and stored in the baseline; its
	// CapturedAt is set. nil writes no identity.
	Identity *Identity
	// Rules: Paths replace the platform's default paths when given,
	// Exclude adds to the default excludes (none with NoDefaultExcludes),
	// Include is used as given.
	Rules             Rules
	NoDefaultExcludes bool
	Hash              string
	Workers           int
	Progress          progress.Func // entries recorded (total unknown: 0)
}

// CaptureResult is what CaptureTree wrote.
type CaptureResult struct {
	BaselineFile  string            `json:"baseline_file"`
	BaselineBytes int64             `json:"baseline_bytes"`
	Hash          string            `json:"hash"`
	Stats         Stats             `json:"stats"`
	Packages      int               `json:"packages"`
	Services      int               `json:"services"`
	Collectors    []CollectorStatus `json:"collectors"`
	Problems      []Problem         `json:"problems"`
	Rules         Rules             `json:"rules"`
	Identity      *Identity         `json:"identity,omitempty"`
	IdentityFile  string            `json:"identity_file,omitempty"`
	OSRelease     string            `json:"os_release,omitempty"`
}

// CaptureTree writes the identity into the tree (when c.Identity is set),
// captures its baseline and writes the baseline file.
func CaptureTree(ctx context.Context, c TreeCapture) (*CaptureResult, error) {
	if c.Root == "" {
		return nil, fmt.Errorf("--root is required (use --root / on the image itself)")
	}
	if fi, err := os.Stat(c.Root); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("--root %s is not a directory", c.Root)
	}
	if c.Identity != nil && (c.Identity.Image == "" || c.Identity.Version == "") {
		return nil, fmt.Errorf("--image and --version are required to write the identity (or give --no-identity)")
	}
	r := DefaultRules(runtime.GOOS)
	if len(c.Rules.Paths) > 0 {
		r.Paths = c.Rules.Paths
	}
	if c.NoDefaultExcludes {
		r.Exclude = nil
	}
	r.Exclude = append(r.Exclude, c.Rules.Exclude...)
	r.Include = c.Rules.Include
	opts := CaptureOptions{Rules: r, Hash: c.Hash, Workers: c.Workers, Progress: c.Progress}
	res := &CaptureResult{BaselineFile: c.Out}
	if c.Identity != nil {
		id := *c.Identity
		id.CapturedAt = time.Now().UTC().Format(time.RFC3339)
		written, err := WriteIdentity(c.Root, id)
		if err != nil {
			return nil, fmt.Errorf("write identity: %w", err)
		}
		opts.Identity = &id
		res.IdentityFile, res.OSRelease = written.IdentityFile, written.OSRelease
	}
	if res.BaselineFile == "" {
		p, err := BaselinePath(c.Root)
		if err != nil {
			return nil, err
		}
		res.BaselineFile = p
	}
	b, err := Capture(ctx, c.Root, opts)
	if err != nil {
		return nil, err
	}
	if res.BaselineBytes, err = WriteBaselineFile(res.BaselineFile, b); err != nil {
		return nil, err
	}
	res.Hash, res.Stats, res.Packages, res.Services = b.Hash, b.Stats, len(b.Packages), len(b.Services)
	res.Collectors, res.Problems, res.Rules, res.Identity = b.Collectors, b.Problems, b.Rules, b.Identity
	return res, nil
}

// Text says what a capture wrote, for people.
func (r *CaptureResult) Text() string {
	var w strings.Builder
	if r.Identity != nil {
		fmt.Fprintf(&w, "identity: %s %s written to %s", r.Identity.Image, r.Identity.Version, r.IdentityFile)
		if r.OSRelease != "" {
			fmt.Fprintf(&w, " and %s", r.OSRelease)
		}
		fmt.Fprintln(&w)
	}
	fmt.Fprintf(&w, "baseline: %d entries (%d hashed, %s, %s) written to %s (%s)\n",
		r.Stats.Entries, r.Stats.Hashed, units.IEC(r.Stats.BytesHashed), r.Hash, r.BaselineFile, units.IEC(r.BaselineBytes))
	fmt.Fprintf(&w, "packages: %d, services: %d\n", r.Packages, r.Services)
	writeCollectors(&w, r.Collectors)
	writeProblems(&w, r.Problems, 20)
	return w.String()
}

func writeCollectors(w *strings.Builder, cs []CollectorStatus) {
	for _, c := range cs {
		fmt.Fprintf(w, "  %-8s %-15s %s\n", c.Name, c.Status, c.Detail)
	}
}

// writeProblems lists at most max problems (all are in the JSON output).
func writeProblems(w *strings.Builder, ps []Problem, max int) {
	if len(ps) == 0 {
		return
	}
	fmt.Fprintf(w, "problems: %d entries could not be fully examined\n", len(ps))
	for i, p := range ps {
		if i == max {
			fmt.Fprintf(w, "  ... %d more (use --output json for all)\n", len(ps)-max)
			break
		}
		fmt.Fprintf(w, "  %s: %s\n", p.Path, p.Err)
	}
}

// fileJSON is an entry as baseline show -o json --files prints it.
type fileJSON struct {
	Path  Name     `json:"path"`
	Type  FileType `json:"type"`
	Mode  string   `json:"mode"`
	UID   uint32   `json:"uid"`
	GID   uint32   `json:"gid"`
	Size  int64    `json:"size"`
	Link  Name     `json:"target,omitempty"`
	Hash  string   `json:"hash,omitempty"`
	Error string   `json:"error,omitempty"`
}

// View is the baseline as -o json shows it: everything but the files, the
// entry count, and with files every entry.
func (b *Baseline) View(files bool) any {
	v := struct {
		*Baseline
		Entries int        `json:"entries"`
		Files   []fileJSON `json:"files,omitempty"`
	}{Baseline: b, Entries: len(b.Files)}
	if files {
		for _, e := range b.Files {
			fj := fileJSON{Path: e.Path, Type: e.Type, Mode: fmt.Sprintf("%04o", e.Mode), UID: e.UID, GID: e.GID, Size: e.Size, Link: Name(e.Link), Error: e.Err}
			if e.HasHash {
				fj.Hash = fmt.Sprintf("%x", e.Hash)
			}
			v.Files = append(v.Files, fj)
		}
	}
	return v
}

// Text is the baseline's summary for people: identity, capture, rules,
// counts and collectors.
func (b *Baseline) Text() string {
	var w strings.Builder
	if b.Identity != nil {
		fmt.Fprintf(&w, "image:      %s %s (build %s, catalog %s)\n", b.Identity.Image, b.Identity.Version, b.Identity.BuildID, b.Identity.CatalogID)
	}
	fmt.Fprintf(&w, "captured:   %s on %s, hash %s\n", b.CapturedAt.Format(time.RFC3339), b.Platform, b.Hash)
	fmt.Fprintf(&w, "paths:      %v\nexcludes:   %v\n", b.Rules.Paths, b.Rules.Exclude)
	fmt.Fprintf(&w, "entries:    %d\npackages:   %d\nservices:   %d\n", len(b.Files), len(b.Packages), len(b.Services))
	writeCollectors(&w, b.Collectors)
	return w.String()
}

// FileHeader names the columns of FileRows.
var FileHeader = []string{"PATH", "TYPE", "MODE", "OWNER", "SIZE", "HASH"}

// FileRows is one row per recorded entry (the hash shortened to 8 bytes).
func (b *Baseline) FileRows() [][]string {
	rows := make([][]string, 0, len(b.Files))
	for _, e := range b.Files {
		h := ""
		if e.HasHash {
			h = fmt.Sprintf("%x", e.Hash[:8])
		}
		rows = append(rows, []string{e.Path.String(), e.Type.String(), fmt.Sprintf("%04o", e.Mode), fmt.Sprintf("%d:%d", e.UID, e.GID), fmt.Sprint(e.Size), h})
	}
	return rows
}

// Text is the drift report for people: one line per finding, then the
// verdict and the counts.
func (r *Report) Text() string {
	var w strings.Builder
	if r.Identity != nil {
		fmt.Fprintf(&w, "image %s %s, baseline of %s\n", r.Identity.Image, r.Identity.Version, r.BaselineAt.Format("2006-01-02 15:04:05Z07:00"))
	}
	for _, f := range r.Files {
		switch f.Kind {
		case Changed:
			fmt.Fprintf(&w, "changed  %s (%s)%s\n", f.Path, strings.Join(f.Changed, ", "), changeDetail(f))
		case Added:
			fmt.Fprintf(&w, "added    %s (%s)\n", f.Path, f.New.Type)
		default:
			fmt.Fprintf(&w, "removed  %s (%s)\n", f.Path, f.Old.Type)
		}
	}
	for _, p := range r.Packages {
		name := p.Manager + ":" + p.Name
		if p.Arch != "" {
			name += ":" + p.Arch
		}
		switch p.Kind {
		case Added:
			fmt.Fprintf(&w, "package  added    %s %s\n", name, p.New)
		case Removed:
			fmt.Fprintf(&w, "package  removed  %s %s\n", name, p.Old)
		default:
			fmt.Fprintf(&w, "package  changed  %s %s -> %s\n", name, p.Old, p.New)
		}
	}
	for _, s := range r.Services {
		switch s.Kind {
		case Added:
			fmt.Fprintf(&w, "service  added    %s %s\n", s.Unit, s.New)
		case Removed:
			fmt.Fprintf(&w, "service  removed  %s %s\n", s.Unit, s.Old)
		default:
			fmt.Fprintf(&w, "service  changed  %s %s -> %s\n", s.Unit, s.Old, s.New)
		}
	}
	for _, c := range r.Collectors {
		if c.Status != CollectorOK && c.Status != CollectorAbsent {
			fmt.Fprintf(&w, "note     %s: %s (%s)\n", c.Name, c.Status, c.Detail)
		}
	}
	writeProblems(&w, r.Problems, 50)
	if r.Truncated > 0 {
		fmt.Fprintf(&w, "(%d findings left out by --limit)\n", r.Truncated)
	}
	verdict := "no drift"
	if r.Drifted {
		verdict = "DRIFTED"
	}
	s := r.Summary
	fmt.Fprintf(&w, "%s: %d added, %d removed, %d changed files; %d package and %d service changes; %d problems (%s check of %d entries, %d hashed, %.1fs)\n",
		verdict, s.FilesAdded, s.FilesRemoved, s.FilesChanged, s.Packages, s.Services, s.Problems,
		r.Depth, r.Stats.Entries, r.Stats.Hashed, float64(r.DurationMS)/1000)
	return w.String()
}

// changeDetail names the old and new value of the attributes that changed
// (mode, owner, type, link target).
func changeDetail(f FileChange) string {
	if f.Old == nil || f.New == nil {
		return ""
	}
	var d []string
	for _, a := range f.Changed {
		switch a {
		case AttrMode:
			d = append(d, "mode "+f.Old.Mode+" -> "+f.New.Mode)
		case AttrOwner:
			d = append(d, fmt.Sprintf("owner %d:%d -> %d:%d", f.Old.UID, f.Old.GID, f.New.UID, f.New.GID))
		case AttrType:
			d = append(d, "type "+f.Old.Type.String()+" -> "+f.New.Type.String())
		case AttrTarget:
			d = append(d, "target "+f.Old.Link.String()+" -> "+f.New.Link.String())
		}
	}
	if len(d) == 0 {
		return ""
	}
	return ": " + strings.Join(d, "; ")
}

// CheckFile checks the tree at root against the baseline file at path
// (default: the one inside root), keeping at most limit file changes and
// problems in the report when limit > 0.
func CheckFile(ctx context.Context, root, path string, limit int, opts CheckOptions) (*Report, error) {
	if path == "" {
		p, err := BaselinePath(root)
		if err != nil {
			return nil, err
		}
		path = p
	}
	b, err := ReadBaselineFile(path)
	if err != nil {
		return nil, err
	}
	r, err := Check(ctx, root, b, opts)
	if err != nil {
		return nil, err
	}
	if limit > 0 {
		r.Limit(limit)
	}
	return r, nil
}
