// Package onprem is the on-premises Hyper-V image library: a directory tree on
// a local file system or a mounted SMB share that Hyper-V hosts read from.
//
// Layout (no symlinks, so it works on SMB shares and NTFS):
//
//	<root>/<image>/<version>/<image>-<version>.<ext>   the disk, never modified
//	<root>/<image>/<version>/metadata.json             what it is (see Metadata)
//	<root>/<image>/latest.json                         pointer to the newest version
//	<root>/<image>/channels/<channel>.json             pointer per channel (test, prod...)
//
// Every file is written under a temporary name, fsynced and renamed; a new
// version is staged in a hidden directory and renamed into place complete,
// so a reader (or a Hyper-V host) never sees a half-written version. A version
// is immutable: adding it again with the same bytes is a no-op, with
// different bytes an error.
package onprem

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/progress"
)

// SchemaVersion is written into every metadata and pointer file.
const SchemaVersion = 1

// Metadata describes one image version. It is written as metadata.json and is
// meant to be read by Hyper-V automation too (PowerShell ConvertFrom-Json).
type Metadata struct {
	Schema            int               `json:"schema"`
	Image             string            `json:"image"`
	Version           string            `json:"version"`
	Generation        string            `json:"generation"` // "V1" (Hyper-V Generation 1, BIOS/MBR) or "V2" (Generation 2, UEFI)
	OS                string            `json:"os"`         // "linux" or "windows"
	DiskFile          string            `json:"diskFile"`   // file name inside the version folder
	Format            string            `json:"format"`     // "vhdx", "vhd-fixed", "vhd-dynamic" or "raw"
	VirtualSize       int64             `json:"virtualSize"`
	FileSize          int64             `json:"fileSize"`
	SHA256            string            `json:"sha256"` // of the disk file's bytes, lower-case hex
	SourceFingerprint string            `json:"sourceFingerprint,omitempty"`
	InputSHA256       string            `json:"inputSHA256,omitempty"` // of the file given to add, before any conversion
	Labels            map[string]string `json:"labels,omitempty"`
	Created           time.Time         `json:"created"`
	Revoked           bool              `json:"revoked"`
	RevokedReason     string            `json:"revokedReason,omitempty"`
	RevokedAt         *time.Time        `json:"revokedAt,omitempty"`
}

// Pointer is the content of latest.json and channels/<channel>.json.
type Pointer struct {
	Schema   int       `json:"schema"`
	Image    string    `json:"image"`
	Channel  string    `json:"channel"` // "latest" for latest.json
	Version  string    `json:"version"`
	DiskPath string    `json:"diskPath"` // relative to the image folder, '/'-separated
	SHA256   string    `json:"sha256"`
	Updated  time.Time `json:"updated"`
}

// Library is an image library rooted at a directory.
type Library struct {
	root string
	now  func() time.Time
}

// Open returns the library at root, creating the directory if needed.
func Open(root string) (*Library, error) {
	if root == "" {
		return nil, errors.New("library path is empty: pass the library directory (a local path or a mounted SMB share)")
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("open library %s: %w", root, err)
	}
	st, err := os.Stat(root)
	if err != nil {
		return nil, fmt.Errorf("open library %s: %w", root, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("library %s is not a directory", root)
	}
	return &Library{root: root, now: func() time.Time { return time.Now().UTC() }}, nil
}

// Root returns the library's directory.
func (l *Library) Root() string { return l.root }

// Errors callers may test with errors.Is.
var (
	ErrNotFound      = errors.New("not found in the library")
	ErrVersionExists = errors.New("version already exists with different content")
	ErrRevoked       = errors.New("version is revoked")
	ErrCorrupt       = errors.New("disk file does not match its recorded SHA-256")
)

// AddOptions describes a version to add.
type AddOptions struct {
	Image, Version string
	Channels       []string // channel pointers to set to this version (optional)
	// Source is read at explicit offsets; Size bytes are copied. When Source
	// is an *os.File, holes are skipped without being read.
	Source            io.ReaderAt
	Size              int64
	Format            string // see Metadata.Format
	VirtualSize       int64
	Generation        string // "V1" or "V2"
	OS                string // "linux" or "windows"
	SourceFingerprint string
	// InputSHA256 is the SHA-256 of the file the user gave, when Source is
	// a conversion of it. Re-adding a version whose recorded InputSHA256 (or
	// SHA256) equals it is a no-op, even though a new conversion would not
	// be byte-identical (VHDX files carry fresh GUIDs).
	InputSHA256 string
	Labels      map[string]string
	// KeepLatest leaves latest.json alone (by default a newly added version
	// becomes latest).
	KeepLatest bool
	Progress   progress.Func // bytes copied (or hashed) out of Size
}

// AddResult tells what Add did.
type AddResult struct {
	Metadata Metadata `json:"metadata"`
	Path     string   `json:"path"`    // the disk file in the library
	Existed  bool     `json:"existed"` // the same version with the same bytes was already there
}

var formatExt = map[string]string{"vhdx": "vhdx", "vhd-fixed": "vhd", "vhd-dynamic": "vhd", "raw": "raw"}

// Add copies a disk into the library as image/version, with its metadata,
// and points the requested channels (and latest) at it.
func (l *Library) Add(ctx context.Context, o AddOptions) (*AddResult, error) {
	if err := checkName("image", o.Image); err != nil {
		return nil, err
	}
	if err := checkName("version", o.Version); err != nil {
		return nil, err
	}
	for _, c := range o.Channels {
		if err := checkName("channel", c); err != nil {
			return nil, err
		}
		if c == "latest" {
			return nil, errors.New(`channel "latest" is managed by the library itself: choose another channel name`)
		}
	}
	ext, ok := formatExt[o.Format]
	if !ok {
		return nil, fmt.Errorf("disk format %q is not one the library stores: use vhdx, vhd-fixed, vhd-dynamic or raw", o.Format)
	}
	if o.Generation != "V1" && o.Generation != "V2" {
		return nil, fmt.Errorf("Hyper-V generation %q: use V1 (BIOS/MBR) or V2 (UEFI/GPT)", o.Generation)
	}
	if o.OS != "linux" && o.OS != "windows" {
		return nil, fmt.Errorf("OS %q: use linux or windows", o.OS)
	}
	if o.Source == nil || o.Size <= 0 {
		return nil, errors.New("nothing to add: the source disk is empty")
	}
	imageDir := filepath.Join(l.root, o.Image)
	versionDir := filepath.Join(imageDir, o.Version)
	md := Metadata{
		Schema: SchemaVersion, Image: o.Image, Version: o.Version,
		Generation: o.Generation, OS: o.OS,
		DiskFile: o.Image + "-" + o.Version + "." + ext, Format: o.Format,
		VirtualSize: o.VirtualSize, FileSize: o.Size,
		SourceFingerprint: o.SourceFingerprint, InputSHA256: o.InputSHA256, Labels: o.Labels,
	}

	if existing, err := l.Get(o.Image, o.Version); err == nil {
		// Immutability: the same input, or the same bits, or nothing.
		sameInput := o.InputSHA256 != "" && (o.InputSHA256 == existing.InputSHA256 || o.InputSHA256 == existing.SHA256)
		if !sameInput {
			sum, err := sparseCopy(ctx, nil, o.Source, o.Size, o.Progress)
			if err != nil {
				return nil, fmt.Errorf("hash %s %s: %w", o.Image, o.Version, err)
			}
			if sum != existing.SHA256 || o.Size != existing.FileSize {
				return nil, fmt.Errorf("%s %s (stored sha256 %s, new %s): %w; publish the new bits under a new version",
					o.Image, o.Version, existing.SHA256, sum, ErrVersionExists)
			}
		}
		if err := l.Verify(ctx, o.Image, o.Version, nil); err != nil {
			return nil, err
		}
		if err := l.setPointers(existing, o.Channels, false); err != nil {
			return nil, err
		}
		return &AddResult{Metadata: *existing, Path: filepath.Join(versionDir, existing.DiskFile), Existed: true}, nil
	} else if !errors.Is(err, ErrNotFound) {
		return nil, err
	}

	if err := os.MkdirAll(imageDir, 0o755); err != nil {
		return nil, fmt.Errorf("create image folder: %w", err)
	}
	stage, err := os.MkdirTemp(imageDir, ".staging-"+o.Version+"-")
	if err != nil {
		return nil, fmt.Errorf("create staging folder in %s: %w", imageDir, err)
	}
	committed := false
	defer func() {
		if !committed {
			os.RemoveAll(stage)
		}
	}()
	f, err := atomicfile.Create(filepath.Join(stage, md.DiskFile), 0o644)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	sum, err := sparseCopy(ctx, f.File, o.Source, o.Size, o.Progress)
	if err != nil {
		return nil, fmt.Errorf("copy %s %s into the library: %w", o.Image, o.Version, err)
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	md.SHA256 = sum
	md.Created = l.now()
	if err := writeJSON(filepath.Join(stage, "metadata.json"), md); err != nil {
		return nil, err
	}
	if err := os.Rename(stage, versionDir); err != nil {
		// Someone else added this version meanwhile: same bytes is fine.
		if other, gerr := l.Get(o.Image, o.Version); gerr == nil {
			if other.SHA256 != sum {
				return nil, fmt.Errorf("%s %s was added concurrently with other bits: %w", o.Image, o.Version, ErrVersionExists)
			}
			if err := l.setPointers(other, o.Channels, false); err != nil {
				return nil, err
			}
			return &AddResult{Metadata: *other, Path: filepath.Join(versionDir, other.DiskFile), Existed: true}, nil
		}
		return nil, fmt.Errorf("move %s %s into place: %w", o.Image, o.Version, err)
	}
	committed = true
	if err := l.setPointers(&md, o.Channels, !o.KeepLatest); err != nil {
		return nil, err
	}
	return &AddResult{Metadata: md, Path: filepath.Join(versionDir, md.DiskFile)}, nil
}

// AddFile adds the disk file at path (see Add; Source and Size are taken
// from the file).
func (l *Library) AddFile(ctx context.Context, path string, o AddOptions) (*AddResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	o.Source, o.Size = f, st.Size()
	res, err := l.Add(ctx, o)
	if err != nil {
		return nil, err
	}
	if st2, err := f.Stat(); err == nil && (st2.Size() != st.Size() || !st2.ModTime().Equal(st.ModTime())) {
		return nil, fmt.Errorf("%s changed while it was being added: the library copy may not match it; rebuild, then add under a new version", path)
	}
	return res, nil
}

func (l *Library) setPointers(md *Metadata, channels []string, latest bool) error {
	for _, c := range channels {
		if err := l.SetChannel(md.Image, md.Version, c); err != nil {
			return err
		}
	}
	if latest {
		return l.writePointer(md, "latest", filepath.Join(l.root, md.Image, "latest.json"))
	}
	return nil
}

// SetChannel points channel at image/version (promotion). Revoked versions
// cannot be promoted.
func (l *Library) SetChannel(image, version, channel string) error {
	if err := checkName("channel", channel); err != nil {
		return err
	}
	if channel == "latest" {
		return errors.New(`channel "latest" is managed by the library itself: choose another channel name`)
	}
	md, err := l.Get(image, version)
	if err != nil {
		return err
	}
	if md.Revoked {
		return fmt.Errorf("point channel %s at %s %s: %w (%s)", channel, image, version, ErrRevoked, md.RevokedReason)
	}
	dir := filepath.Join(l.root, image, "channels")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return l.writePointer(md, channel, filepath.Join(dir, channel+".json"))
}

func (l *Library) writePointer(md *Metadata, channel, path string) error {
	return writeJSON(path, Pointer{
		Schema: SchemaVersion, Image: md.Image, Channel: channel, Version: md.Version,
		DiskPath: md.Version + "/" + md.DiskFile, SHA256: md.SHA256, Updated: l.now(),
	})
}

// Get reads the metadata of image/version.
func (l *Library) Get(image, version string) (*Metadata, error) {
	if err := checkName("image", image); err != nil {
		return nil, err
	}
	if err := checkName("version", version); err != nil {
		return nil, err
	}
	var md Metadata
	p := filepath.Join(l.root, image, version, "metadata.json")
	if err := readJSON(p, &md); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s %s: %w", image, version, ErrNotFound)
		}
		return nil, err
	}
	if md.Image != image || md.Version != version {
		return nil, fmt.Errorf("%s names %s %s, not %s %s: the library was edited by hand; restore the folder", p, md.Image, md.Version, image, version)
	}
	return &md, nil
}

// Resolve returns the metadata a reference names: a version, "latest", or
// a channel name (a version of the same name wins over a channel).
func (l *Library) Resolve(image, ref string) (*Metadata, error) {
	md, err := l.Get(image, ref)
	if err == nil || !errors.Is(err, ErrNotFound) {
		return md, err
	}
	p, perr := l.Pointer(image, ref)
	if perr != nil {
		if errors.Is(perr, ErrNotFound) {
			return nil, fmt.Errorf("%s %s is neither a version nor a channel: %w", image, ref, ErrNotFound)
		}
		return nil, perr
	}
	return l.Get(image, p.Version)
}

// Pointer reads latest.json (channel "latest") or a channel pointer.
func (l *Library) Pointer(image, channel string) (*Pointer, error) {
	if err := checkName("image", image); err != nil {
		return nil, err
	}
	path := filepath.Join(l.root, image, "latest.json")
	if channel != "latest" {
		if err := checkName("channel", channel); err != nil {
			return nil, err
		}
		path = filepath.Join(l.root, image, "channels", channel+".json")
	}
	var p Pointer
	if err := readJSON(path, &p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%s channel %s: %w", image, channel, ErrNotFound)
		}
		return nil, err
	}
	return &p, nil
}

// Revoke marks image/version as revoked (it stays on disk for VMs whose
// differencing disks depend on it). If it was latest, latest moves to the
// newest version that is not revoked, or is removed. Channel pointers are
// left as they are; Resolve through them then fails with ErrRevoked.
func (l *Library) Revoke(image, version, reason string) (*Metadata, error) {
	md, err := l.Get(image, version)
	if err != nil {
		return nil, err
	}
	if reason == "" {
		return nil, errors.New("give a reason for the revocation: it is shown to whoever tries to deploy the version")
	}
	now := l.now()
	md.Revoked, md.RevokedReason, md.RevokedAt = true, reason, &now
	if err := writeJSON(filepath.Join(l.root, image, version, "metadata.json"), md); err != nil {
		return nil, err
	}
	if err := l.movePastLatest(image, version); err != nil {
		return nil, err
	}
	return md, nil
}

// movePastLatest repoints latest.json at the newest version that is not
// revoked (or removes it) when it points at version, which is being revoked
// or deleted.
func (l *Library) movePastLatest(image, version string) error {
	p, err := l.Pointer(image, "latest")
	if err != nil || p.Version != version {
		return nil
	}
	versions, err := l.Versions(image)
	if err != nil {
		return err
	}
	latest := filepath.Join(l.root, image, "latest.json")
	var newest *Metadata
	for i := range versions {
		if !versions[i].Revoked && versions[i].Version != version {
			newest = &versions[i]
		}
	}
	if newest == nil {
		return os.Remove(latest)
	}
	return l.writePointer(newest, "latest", latest)
}

// Delete removes image/version from the library (retention). A version that
// a channel still points at is refused: move the channel first. The folder
// disappears at once (renamed aside, then removed), so readers never see a
// half-deleted version.
func (l *Library) Delete(image, version string) error {
	if _, err := l.Get(image, version); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(l.root, image, "channels"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	for _, e := range entries {
		channel, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		if p, err := l.Pointer(image, channel); err == nil && p.Version == version {
			return fmt.Errorf("delete %s %s: channel %s points at it: promote another version to %s first", image, version, channel, channel)
		}
	}
	if err := l.movePastLatest(image, version); err != nil {
		return err
	}
	aside, err := os.MkdirTemp(filepath.Join(l.root, image), ".deleting-"+version+"-")
	if err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(l.root, image, version), filepath.Join(aside, version)); err != nil {
		os.Remove(aside)
		return fmt.Errorf("delete %s %s: %w", image, version, err)
	}
	return os.RemoveAll(aside)
}

// HashFile returns the SHA-256 (hex) and size of the file at path, reading
// only its data ranges where the file system reports holes.
func HashFile(ctx context.Context, path string, fn progress.Func) (string, int64, error) {
	return hashFile(ctx, path, fn)
}

// Versions lists the complete versions of image, oldest first.
func (l *Library) Versions(image string) ([]Metadata, error) {
	if err := checkName("image", image); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(l.root, image))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image %s: %w", image, ErrNotFound)
		}
		return nil, err
	}
	var out []Metadata
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") || e.Name() == "channels" || checkName("version", e.Name()) != nil {
			continue
		}
		md, err := l.Get(image, e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // not a version folder
		}
		if err != nil {
			return nil, err
		}
		out = append(out, *md)
	}
	slices.SortFunc(out, func(a, b Metadata) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.Version, b.Version))
	})
	return out, nil
}

// ImageInfo is one image in a listing.
type ImageInfo struct {
	Image    string            `json:"image"`
	Latest   string            `json:"latest,omitempty"`
	Channels map[string]string `json:"channels,omitempty"` // channel -> version
	Versions []Metadata        `json:"versions"`
}

// List returns every image in the library with its versions and pointers.
func (l *Library) List() ([]ImageInfo, error) {
	entries, err := os.ReadDir(l.root)
	if err != nil {
		return nil, err
	}
	var out []ImageInfo
	for _, e := range entries {
		if !e.IsDir() || checkName("image", e.Name()) != nil {
			continue
		}
		vs, err := l.Versions(e.Name())
		if err != nil {
			return nil, err
		}
		if len(vs) == 0 {
			continue
		}
		info := ImageInfo{Image: e.Name(), Versions: vs}
		if p, err := l.Pointer(e.Name(), "latest"); err == nil {
			info.Latest = p.Version
		}
		chs, _ := os.ReadDir(filepath.Join(l.root, e.Name(), "channels"))
		for _, c := range chs {
			name, ok := strings.CutSuffix(c.Name(), ".json")
			if !ok || checkName("channel", name) != nil {
				continue
			}
			if p, err := l.Pointer(e.Name(), name); err == nil {
				if info.Channels == nil {
					info.Channels = map[string]string{}
				}
				info.Channels[name] = p.Version
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// DiskPath returns the path of a version's disk file.
func (l *Library) DiskPath(md *Metadata) string {
	return filepath.Join(l.root, md.Image, md.Version, md.DiskFile)
}

// Verify re-reads image/version's disk file and checks its size and SHA-256
// against the metadata. A mismatch wraps ErrCorrupt.
func (l *Library) Verify(ctx context.Context, image, version string, fn progress.Func) error {
	md, err := l.Get(image, version)
	if err != nil {
		return err
	}
	sum, size, err := hashFile(ctx, l.DiskPath(md), fn)
	if err != nil {
		return fmt.Errorf("verify %s %s: %w", image, version, err)
	}
	if size != md.FileSize || sum != md.SHA256 {
		return fmt.Errorf("%s %s: %w (recorded %d bytes sha256 %s, found %d bytes sha256 %s); restore it from another copy or revoke it",
			image, version, ErrCorrupt, md.FileSize, md.SHA256, size, sum)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o644)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is not valid library JSON: %w", path, err)
	}
	return nil
}
