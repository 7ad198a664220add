// Package build runs Packer, follows its machine-readable output, finds the
// artifacts it produced (from the manifest post-processor, or from Packer's
// own artifact listing) and records their provenance: the template's git
// commit and hashes, the Packer version, the artifacts' SHA-256 and the
// Hyper-V generation of each disk.
//
// It runs Packer as a process (`packer build -machine-readable`), so it works
// with Debian's Packer 1.6.6 and with current releases alike: their
// machine-readable output and manifest format are the same.
package build

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// Options describe one build.
type Options struct {
	Template string            // a template file (.pkr.hcl, .pkr.json, .json) or a directory of .pkr.hcl files
	Vars     map[string]string // -var k=v (values are passed to Packer, never recorded)
	VarFiles []string          // -var-file
	Only     []string          // -only
	// WorkDir is Packer's working directory; relative paths in the template
	// and the manifest are relative to it. Default: the current directory.
	WorkDir string
	// Manifest is the manifest post-processor's output path (relative to
	// WorkDir). Default "packer-manifest.json", the post-processor's default.
	Manifest string
	Packer   string   // the packer program; default "packer" from PATH
	Env      []string // extra environment for Packer (KEY=VALUE)
	// Generation and OS describe the disks when they cannot be detected and
	// the manifest's custom_data does not say ("V1"/"V2", "linux"/"windows").
	Generation, OS string
	// OnLine receives every machine-readable line as it arrives (progress).
	// Lines Packer did not write in machine-readable form arrive as Type "raw".
	OnLine func(Line)
	// Inspect tells the format, virtual size and Hyper-V generation of an
	// artifact file, or ok=false for files that are not disk images.
	// Default: InspectDisk.
	Inspect func(path string) (DiskInfo, bool)
}

// DiskInfo describes a disk artifact.
type DiskInfo struct {
	Format      string // "raw", "vhd-fixed", "vhd-dynamic", "vhdx", "qcow2"
	VirtualSize int64
	Generation  string // "V1", "V2" or "" when unknown
}

// Result is what a build produced. It is JSON-serialisable as is, for the
// catalog and for `imgpipe build --output json`.
type Result struct {
	Artifacts  []Artifact `json:"artifacts"`
	Provenance Provenance `json:"provenance"`
}

// Disks returns the artifacts that are disk images.
func (r *Result) Disks() []Artifact {
	var out []Artifact
	for _, a := range r.Artifacts {
		if a.Format != "" {
			out = append(out, a)
		}
	}
	return out
}

// Artifact is one file a build produced.
type Artifact struct {
	Build          string            `json:"build"` // build (source) name, e.g. "disk" or "null.disk"
	BuilderType    string            `json:"builderType,omitempty"`
	ArtifactID     string            `json:"artifactId,omitempty"`
	Path           string            `json:"path"` // absolute
	Size           int64             `json:"size"`
	SHA256         string            `json:"sha256"`
	Format         string            `json:"format,omitempty"` // disk format; empty for other files
	VirtualSize    int64             `json:"virtualSize,omitempty"`
	Generation     string            `json:"generation,omitempty"`     // "V1"/"V2" for disks
	GenerationFrom string            `json:"generationFrom,omitempty"` // "disk", "custom_data" or "option"
	OS             string            `json:"os,omitempty"`
	CustomData     map[string]string `json:"customData,omitempty"`
}

// Provenance records where a build came from.
type Provenance struct {
	Template      string     `json:"template"` // absolute path
	TemplateFiles []FileHash `json:"templateFiles"`
	GitCommit     string     `json:"gitCommit,omitempty"` // of the repository holding the template
	GitDirty      bool       `json:"gitDirty"`            // uncommitted changes under the template's directory
	GitPath       string     `json:"gitPath,omitempty"`   // template path inside the repository
	PackerVersion string     `json:"packerVersion"`
	PackerRunUUID string     `json:"packerRunUUID,omitempty"`
	VarNames      []string   `json:"varNames,omitempty"` // values are not recorded (they may be secrets)
	Started       time.Time  `json:"started"`
	Finished      time.Time  `json:"finished"`
	ManifestPath  string     `json:"manifestPath,omitempty"`
}

// FileHash is a template file and its SHA-256.
type FileHash struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
}

// Error is a failed Packer run, carrying Packer's own messages.
type Error struct {
	ExitCode int
	Messages []string // Packer's error messages, most specific first
	Stderr   string   // tail of Packer's stderr, if any
}

func (e *Error) Error() string {
	msg := "packer build failed"
	if e.ExitCode > 0 {
		msg += fmt.Sprintf(" (exit status %d)", e.ExitCode)
	}
	if len(e.Messages) > 0 {
		msg += ": " + strings.Join(e.Messages, "; ")
	} else if e.Stderr != "" {
		msg += ": " + e.Stderr
	}
	return msg
}

// Run runs `packer build` and returns the artifacts and provenance.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Template == "" {
		return nil, errors.New("no template given: pass a Packer template file or directory")
	}
	packer := o.Packer
	if packer == "" {
		packer = "packer"
	}
	packerPath, err := exec.LookPath(packer)
	if err != nil {
		return nil, fmt.Errorf("packer is not installed or not on PATH (%w): install it (Debian: apt-get install packer)", err)
	}
	workDir := o.WorkDir
	if workDir == "" {
		if workDir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	if workDir, err = filepath.Abs(workDir); err != nil {
		return nil, err
	}
	tmpl := o.Template
	if !filepath.IsAbs(tmpl) {
		tmpl = filepath.Join(workDir, tmpl)
	}
	files, err := templateFiles(ctx, tmpl)
	if err != nil {
		return nil, err
	}
	res := &Result{Provenance: Provenance{Template: tmpl, TemplateFiles: files}}
	prov := &res.Provenance
	for k := range o.Vars {
		prov.VarNames = append(prov.VarNames, k)
	}
	slices.Sort(prov.VarNames)
	env := append(os.Environ(), "CHECKPOINT_DISABLE=1") // no version check over the network
	env = append(env, o.Env...)
	if prov.PackerVersion, err = packerVersion(ctx, packerPath, env); err != nil {
		return nil, err
	}
	gitInfo(ctx, tmpl, prov)

	manifest := o.Manifest
	if manifest == "" {
		manifest = "packer-manifest.json"
	}
	if !filepath.IsAbs(manifest) {
		manifest = filepath.Join(workDir, manifest)
	}
	before, _ := os.Stat(manifest)

	args := []string{"build", "-machine-readable", "-color=false"}
	for _, k := range slices.Sorted(maps.Keys(o.Vars)) {
		args = append(args, "-var", k+"="+o.Vars[k])
	}
	for _, f := range o.VarFiles {
		args = append(args, "-var-file="+f)
	}
	if len(o.Only) > 0 {
		args = append(args, "-only="+strings.Join(o.Only, ","))
	}
	args = append(args, tmpl)

	cmd := exec.CommandContext(ctx, packerPath, args...)
	cmd.Dir = workDir
	cmd.Env = env
	// On cancellation, interrupt Packer so it cleans up (VMs, temp files),
	// and kill it only if it does not stop in time.
	interruptGroup(cmd)
	cmd.WaitDelay = 2 * time.Minute
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stderr := &tailBuffer{max: 16 << 10}
	cmd.Stderr = stderr
	prov.Started = time.Now().UTC()
	slog.Debug("running packer", "args", redactVars(args), "dir", workDir)
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start packer: %w", err)
	}
	var st streamState
	readLines(stdout, func(s string) {
		l, err := ParseLine(s)
		if err != nil {
			l = Line{Time: time.Now().UTC(), Type: "raw", Data: []string{s}}
		}
		st.add(l)
		if o.OnLine != nil {
			o.OnLine(l)
		}
	})
	waitErr := cmd.Wait()
	prov.Finished = time.Now().UTC()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("packer build interrupted: %w", ctx.Err())
	}
	if waitErr != nil {
		e := &Error{Messages: st.buildErrors, Stderr: strings.TrimSpace(stderr.String())}
		if len(e.Messages) == 0 {
			e.Messages = st.uiErrors
		}
		var ee *exec.ExitError
		if errors.As(waitErr, &ee) {
			e.ExitCode = ee.ExitCode()
		} else if len(e.Messages) == 0 {
			e.Messages = []string{waitErr.Error()}
		}
		return nil, e
	}

	var builds []ManifestBuild
	if after, err := os.Stat(manifest); err == nil && (before == nil || !after.ModTime().Equal(before.ModTime()) || after.Size() != before.Size()) {
		b, err := os.ReadFile(manifest)
		if err != nil {
			return nil, err
		}
		m, err := ParseManifest(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", manifest, err)
		}
		builds = m.LastRun()
		prov.PackerRunUUID = m.LastRunUUID
		prov.ManifestPath = manifest
	} else {
		// No (fresh) manifest: use the artifact list Packer printed.
		finals := st.finalArtifacts()
		for _, target := range slices.Sorted(maps.Keys(finals)) {
			a := finals[target]
			mb := ManifestBuild{Name: target, ArtifactID: a.id}
			if bt, _, ok := strings.Cut(target, "."); ok {
				mb.BuilderType = bt
			}
			for _, f := range a.files {
				mb.Files = append(mb.Files, ManifestFile{Name: f})
			}
			builds = append(builds, mb)
		}
	}
	if err := collectArtifacts(ctx, res, builds, workDir, o); err != nil {
		return res, err
	}
	return res, nil
}

// collectArtifacts describes every file of builds (paths relative to workDir)
// into res.Artifacts.
func collectArtifacts(ctx context.Context, res *Result, builds []ManifestBuild, workDir string, o Options) error {
	seen := map[string]bool{}
	for _, b := range builds {
		for _, f := range b.Files {
			p := f.Name
			if !filepath.IsAbs(p) {
				p = filepath.Join(workDir, p)
			}
			if seen[p] {
				continue
			}
			seen[p] = true
			a, err := describe(ctx, p, b, o)
			if err != nil {
				return err
			}
			res.Artifacts = append(res.Artifacts, a)
		}
	}
	if len(res.Artifacts) == 0 {
		return errors.New("packer build succeeded but produced no artifact files: add the manifest post-processor (and, for builders without files, the artifice post-processor) to the template")
	}
	return nil
}

// FromManifest describes the artifacts of an earlier Packer run from its
// manifest (o.Manifest, relative to o.WorkDir) without running Packer again:
// for recording a build whose disk is already there. The provenance holds the
// template's current hashes and git state, and the manifest's run id and time.
func FromManifest(ctx context.Context, o Options) (*Result, error) {
	workDir := o.WorkDir
	var err error
	if workDir == "" {
		if workDir, err = os.Getwd(); err != nil {
			return nil, err
		}
	}
	if workDir, err = filepath.Abs(workDir); err != nil {
		return nil, err
	}
	manifest := cmpOr(o.Manifest, "packer-manifest.json")
	if !filepath.IsAbs(manifest) {
		manifest = filepath.Join(workDir, manifest)
	}
	b, err := os.ReadFile(manifest)
	if err != nil {
		return nil, fmt.Errorf("read the manifest of the earlier build: %w", err)
	}
	m, err := ParseManifest(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", manifest, err)
	}
	builds := m.LastRun()
	res := &Result{Provenance: Provenance{PackerRunUUID: m.LastRunUUID, ManifestPath: manifest}}
	if o.Template != "" {
		tmpl := o.Template
		if !filepath.IsAbs(tmpl) {
			tmpl = filepath.Join(workDir, tmpl)
		}
		if res.Provenance.TemplateFiles, err = templateFiles(ctx, tmpl); err != nil {
			return nil, err
		}
		res.Provenance.Template = tmpl
		gitInfo(ctx, tmpl, &res.Provenance)
	}
	for _, mb := range builds {
		if mb.BuildTime > 0 {
			t := time.Unix(mb.BuildTime, 0).UTC()
			res.Provenance.Started, res.Provenance.Finished = t, t
		}
	}
	if err := collectArtifacts(ctx, res, builds, workDir, o); err != nil {
		return res, err
	}
	return res, nil
}

func describe(ctx context.Context, path string, b ManifestBuild, o Options) (Artifact, error) {
	a := Artifact{Build: b.Name, BuilderType: b.BuilderType, ArtifactID: b.ArtifactID, Path: path, CustomData: b.CustomData}
	sum, size, err := hashFile(ctx, path)
	if err != nil {
		return a, fmt.Errorf("artifact %s listed by Packer: %w", path, err)
	}
	a.SHA256, a.Size = sum, size
	a.OS = cmpOr(b.CustomData["os"], o.OS)
	inspect := o.Inspect
	if inspect == nil {
		inspect = InspectDisk
	}
	info, ok := inspect(path)
	if !ok {
		return a, nil
	}
	a.Format, a.VirtualSize = info.Format, info.VirtualSize
	switch {
	case info.Generation != "":
		a.Generation, a.GenerationFrom = info.Generation, "disk"
	case b.CustomData["generation"] != "":
		a.Generation, a.GenerationFrom = b.CustomData["generation"], "custom_data"
	case o.Generation != "":
		a.Generation, a.GenerationFrom = o.Generation, "option"
	}
	return a, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func templateFiles(ctx context.Context, tmpl string) ([]FileHash, error) {
	st, err := os.Stat(tmpl)
	if err != nil {
		return nil, fmt.Errorf("template: %w", err)
	}
	paths := []string{tmpl}
	if st.IsDir() {
		paths = nil
		entries, err := os.ReadDir(tmpl)
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".pkr.hcl") || strings.HasSuffix(n, ".pkr.json") || strings.HasSuffix(n, ".pkrvars.hcl")) {
				paths = append(paths, filepath.Join(tmpl, n))
			}
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("template directory %s holds no .pkr.hcl or .pkr.json file", tmpl)
		}
	}
	var out []FileHash
	for _, p := range paths {
		sum, _, err := hashFile(ctx, p)
		if err != nil {
			return nil, err
		}
		out = append(out, FileHash{Path: p, SHA256: sum})
	}
	return out, nil
}

var versionRE = regexp.MustCompile(`,version,v?([0-9][^,\s]*)`)

// versionCache remembers the version of a packer binary (by path, size and
// modification time): asking costs a process start.
var versionCache sync.Map

func packerVersion(ctx context.Context, packer string, env []string) (string, error) {
	var key string
	if st, err := os.Stat(packer); err == nil {
		key = fmt.Sprintf("%s\x00%d\x00%d", packer, st.Size(), st.ModTime().UnixNano())
		if v, ok := versionCache.Load(key); ok {
			return v.(string), nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, packer, "-machine-readable", "version")
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("run %s version: %w", packer, err)
	}
	m := versionRE.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s version printed no version: %.200q", packer, out)
	}
	if key != "" {
		versionCache.Store(key, string(m[1]))
	}
	return string(m[1]), nil
}

// gitInfo records the commit of the repository holding the template, and
// whether anything under the template's directory is uncommitted. Outside a
// repository it records nothing.
func gitInfo(ctx context.Context, tmpl string, p *Provenance) {
	dir := tmpl
	if st, err := os.Stat(tmpl); err == nil && !st.IsDir() {
		dir = filepath.Dir(tmpl)
	}
	git := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "git", append([]string{"-C", dir}, args...)...)
		out, err := cmd.Output()
		return strings.TrimSpace(string(out)), err
	}
	commit, err := git("rev-parse", "HEAD")
	if err != nil {
		slog.Debug("template is not in a git repository", "dir", dir, "err", err)
		return
	}
	p.GitCommit = commit
	if status, err := git("status", "--porcelain", "--", "."); err == nil && status != "" {
		p.GitDirty = true
	}
	if top, err := git("rev-parse", "--show-toplevel"); err == nil {
		real, err1 := filepath.EvalSymlinks(tmpl)
		rtop, err2 := filepath.EvalSymlinks(top)
		if err1 == nil && err2 == nil {
			if rel, err := filepath.Rel(rtop, real); err == nil {
				p.GitPath = filepath.ToSlash(rel)
			}
		}
	}
}

func hashFile(ctx context.Context, path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	buf := make([]byte, 1<<20)
	var n int64
	for {
		if err := ctx.Err(); err != nil {
			return "", 0, err
		}
		k, err := f.Read(buf)
		h.Write(buf[:k])
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return "", 0, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// readLines calls fn for each line of r, cutting absurdly long lines at
// 1 MiB (the rest is dropped) so memory stays bounded, and always drains r.
func readLines(r io.Reader, fn func(string)) {
	const max = 1 << 20
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		if len(line)+len(chunk) <= max {
			line = append(line, chunk...)
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if len(line) > 0 {
			fn(strings.TrimRight(string(line), "\n"))
		}
		line = line[:0]
		if err != nil {
			return
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = bytes.Clone(t.b[len(t.b)-t.max:])
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// redactVars hides -var values in logs: they may be secrets.
func redactVars(args []string) []string {
	out := slices.Clone(args)
	for i := 1; i < len(out); i++ {
		if out[i-1] == "-var" {
			if k, _, ok := strings.Cut(out[i], "="); ok {
				out[i] = k + "=..."
			}
		}
	}
	return out
}
