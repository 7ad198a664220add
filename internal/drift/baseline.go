package drift

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"imgpipe/internal/progress"
)

// Baseline is the recorded configuration of an image. Files are sorted by
// path (byte order) and unique.
type Baseline struct {
	Identity *Identity `json:"identity,omitempty"`
	// Hash is the content hash algorithm of Files.
	Hash  string `json:"hash"`
	Rules Rules  `json:"rules"`
	// CapturedAt is when the walk started; the quick check re-hashes files
	// changed within RacyWindow of it.
	CapturedAt time.Time `json:"captured_at"`
	// Platform is the GOOS of the capturing imgpipe.
	Platform string `json:"platform"`
	// OS is the tree's os-release, when it has one.
	OS         *OSRelease        `json:"os,omitempty"`
	Files      []Entry           `json:"-"`
	Packages   []Package         `json:"packages,omitempty"`
	Services   []Service         `json:"services,omitempty"`
	Collectors []CollectorStatus `json:"collectors,omitempty"`
	Problems   []Problem         `json:"problems,omitempty"`
	Stats      Stats             `json:"stats"`
}

// CaptureOptions tune Capture.
type CaptureOptions struct {
	// Rules choose the files; the zero value means DefaultRules for the
	// running platform.
	Rules Rules
	// Hash is HashBLAKE3 or HashSHA256; empty means DefaultHash.
	Hash string
	// Workers bounds the goroutines walking and hashing; 0 means the number
	// of CPUs.
	Workers int
	// Identity, when set, is stored in the baseline (see WriteIdentity for
	// writing it into the tree).
	Identity *Identity
	// Progress receives the number of entries recorded (total unknown: 0).
	Progress progress.Func
}

// Capture records the baseline of the tree at root.
func Capture(ctx context.Context, root string, opts CaptureOptions) (*Baseline, error) {
	rules := opts.Rules
	if len(rules.Paths) == 0 && len(rules.Include) == 0 && len(rules.Exclude) == 0 {
		rules = DefaultRules(runtime.GOOS)
	}
	if len(rules.Paths) == 0 {
		rules.Paths = []string{"."}
	}
	alg := opts.Hash
	if alg == "" {
		alg = DefaultHash
	}
	if _, err := newHasher(alg); err != nil {
		return nil, err
	}
	paths, err := cleanPaths(rules.Paths)
	if err != nil {
		return nil, err
	}
	rules.Paths = paths
	m, err := newMatcher(rules.Include, rules.Exclude)
	if err != nil {
		return nil, err
	}
	b := &Baseline{Hash: alg, Rules: rules, Platform: runtime.GOOS, CapturedAt: time.Now().UTC()}
	if opts.Identity != nil {
		id := *opts.Identity
		if id.CapturedAt == "" {
			id.CapturedAt = b.CapturedAt.Format(time.RFC3339)
		}
		b.Identity = &id
	}
	w := &walker{root: root, paths: paths, m: m, alg: alg, workers: opts.Workers,
		progress: progress.NewCounter(0, opts.Progress)}
	res, err := w.run(ctx)
	if err != nil {
		return nil, fmt.Errorf("walk %s: %w", root, err)
	}
	b.Files, b.Problems, b.Stats = res.entries, res.problems, res.stats
	b.Packages, b.Services, b.Collectors = collectSystem(root)
	if b.OS, err = ReadOSRelease(root); err != nil {
		b.Problems = append(b.Problems, Problem{Path: "etc/os-release", Err: err.Error()})
	}
	return b, nil
}

// collectSystem runs the package and service collectors.
func collectSystem(root string) ([]Package, []Service, []CollectorStatus) {
	var cs []CollectorStatus
	dpkg, st := collectDpkg(root)
	cs = append(cs, st)
	rpm, st := collectRPM(root)
	cs = append(cs, st)
	svc, st := collectSystemd(root)
	cs = append(cs, st)
	return append(dpkg, rpm...), svc, cs
}
