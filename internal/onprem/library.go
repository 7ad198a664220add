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
	InputFormat       string            `json:"inputFormat,omitempty"` // its format (when it equals Format, the disk is the input itself)
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
	// hook, when set (tests), is called at named points of an add: before
	// each read of the input ("hash input", "copy input") with its offset,
	// and just before a version is renamed into place ("commit").
	hook func(step string, off int64)
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

// ErrSourceChanged is returned by AddFile when the input file changed while
// it was being added: nothing is published and the version name stays free.
var ErrSourceChanged = errors.New("the source changed while it was being read")

// AddOptions describes a version to add.
type AddOptions struct {
	Image, Version string
	Channels       []string // channel pointers to set to this version (optional)
	// Source is read at explicit offsets; Size bytes are copied. When Source
	// is an *os.File, holes are skipped without being read. (Add only;
	// AddFile reads its file.)
	Source io.ReaderAt
	Size   int64
	// Format is the stored format (see Metadata.Format). AddFile detects
	// it from the input and refuses a contradicting value.
	Format string
	// VirtualSize of the disk. AddFile detects it and refuses a
	// contradicting value (the disk changed since the caller looked).
	VirtualSize       int64
	Generation        string // "V1" or "V2"; AddFile refuses one the partition table contradicts
	OS                string // "linux" or "windows"
	SourceFingerprint string
	// InputSHA256 is the SHA-256 of the file the user gave. For Add, when
	// Source is a conversion of it. For AddFile it is the digest taken
	// before (computed when empty), which the bytes actually copied must
	// match. Re-adding a version whose recorded InputSHA256 (or SHA256)
	// equals it is a no-op, even though a new conversion would not be
	// byte-identical (VHDX files carry fresh GUIDs).
	InputSHA256 string
	// Convert names the format AddFile stores an input of another format
	// in: "vhdx" (the format Hyper-V differencing disks need), or "" to
	// store the input as it is.
	Convert string
	Labels  map[string]string
	// KeepLatest leaves latest.json alone (by default a newly added version
	// becomes latest).
	KeepLatest bool
	Progress   progress.Func // bytes copied (or hashed) out of Size
	// Step, when set, is called as AddFile starts each of its passes
	// ("hash input", "copy input", "convert to VHDX", "hash library copy")
	// and returns the progress function for it (instead of Progress).
	Step func(name string) progress.Func
}

// AddResult tells what Add did.
type AddResult struct {
	Metadata Metadata `json:"metadata"`
	Path     string   `json:"path"`    // the disk file in the library
	Existed  bool     `json:"existed"` // the same version with the same bytes was already there
}

var formatExt = map[string]string{"vhdx": "vhdx", "vhd-fixed": "vhd", "vhd-dynamic": "vhd", "raw": "raw"}

// check validates o's names and descriptive fields.
func (o *AddOptions) check() error {
	if err := checkName("image", o.Image); err != nil {
		return err
	}
	if err := checkName("version", o.Version); err != nil {
		return err
	}
	for _, c := range o.Channels {
		if err := checkName("channel", c); err != nil {
			return err
		}
		if c == "latest" {
			return errors.New(`channel "latest" is managed by the library itself: choose another channel name`)
		}
	}
	if o.Generation != "V1" && o.Generation != "V2" {
		return fmt.Errorf("Hyper-V generation %q: use V1 (BIOS/MBR) or V2 (UEFI/GPT)", o.Generation)
	}
	if o.OS != "linux" && o.OS != "windows" {
		return fmt.Errorf("OS %q: use linux or windows", o.OS)
	}
	return nil
}

func checkFormat(format string) (string, error) {
	ext, ok := formatExt[format]
	if !ok {
		return "", fmt.Errorf("disk format %q is not one the library stores: use vhdx, vhd-fixed, vhd-dynamic or raw", format)
	}
	return ext, nil
}

// Add copies a disk into the library as image/version, with its metadata,
// and points the requested channels (and latest) at it.
func (l *Library) Add(ctx context.Context, o AddOptions) (*AddResult, error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	ext, err := checkFormat(o.Format)
	if err != nil {
		return nil, err
	}
	if o.Source == nil || o.Size <= 0 {
		return nil, errors.New("nothing to add: the source disk is empty")
	}
	if res, err := l.existing(ctx, o, func() (string, error) {
		return sparseCopy(ctx, nil, o.Source, o.Size, o.Progress, nil)
	}); res != nil || err != nil {
		return res, err
	}
	st, err := l.newStage(o.Image, o.Version)
	if err != nil {
		return nil, err
	}
	defer st.discard()
	md := o.metadata(ext)
	f, err := atomicfile.Create(filepath.Join(st.dir, md.DiskFile), filePerm())
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	sum, err := sparseCopy(ctx, f.File, o.Source, o.Size, o.Progress, nil)
	if err != nil {
		return nil, fmt.Errorf("copy %s %s into the library: %w", o.Image, o.Version, err)
	}
	if err := f.Commit(); err != nil {
		return nil, err
	}
	md.SHA256, md.FileSize = sum, o.Size
	return l.commit(st, &md, o)
}

func (o *AddOptions) metadata(ext string) Metadata {
	return Metadata{
		Schema: SchemaVersion, Image: o.Image, Version: o.Version,
		Generation: o.Generation, OS: o.OS,
		DiskFile: o.Image + "-" + o.Version + "." + ext, Format: o.Format,
		VirtualSize: o.VirtualSize, FileSize: o.Size,
		SourceFingerprint: o.SourceFingerprint, InputSHA256: o.InputSHA256, Labels: o.Labels,
	}
}

// existing handles a version that is already in the library: the same
// input (or the same bits, which sum computes when needed) is a no-op that
// verifies the stored copy and sets the pointers; anything else is
// ErrVersionExists. It returns nil, nil when the version is not there.
func (l *Library) existing(ctx context.Context, o AddOptions, sum func() (string, error)) (*AddResult, error) {
	existing, err := l.Get(o.Image, o.Version)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	// Immutability: the same input, or the same bits, or nothing.
	sameInput := o.InputSHA256 != "" && (o.InputSHA256 == existing.InputSHA256 || o.InputSHA256 == existing.SHA256)
	if !sameInput {
		s, err := sum()
		if err != nil {
			return nil, fmt.Errorf("hash %s %s: %w", o.Image, o.Version, err)
		}
		if s != existing.SHA256 {
			return nil, fmt.Errorf("%s %s (stored sha256 %s, new %s): %w; publish the new bits under a new version",
				o.Image, o.Version, existing.SHA256, s, ErrVersionExists)
		}
	}
	if err := l.Verify(ctx, o.Image, o.Version, nil); err != nil {
		return nil, err
	}
	if err := l.setPointers(existing, o.Channels, false); err != nil {
		return nil, err
	}
	return &AddResult{Metadata: *existing, Path: l.DiskPath(existing), Existed: true}, nil
}

// stage is a hidden folder in the image folder where a version is put
// together before it is renamed into place complete.
type stage struct {
	dir, final string
	done       bool
}

func (l *Library) newStage(image, version string) (*stage, error) {
	imageDir, err := l.path(image)
	if err != nil {
		return nil, err
	}
	final, err := l.path(image, version)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(imageDir, dirPerm()); err != nil {
		return nil, fmt.Errorf("create image folder: %w", err)
	}
	removeLeftovers(imageDir)
	dir, err := os.MkdirTemp(imageDir, hiddenPattern(".staging-", version))
	if err != nil {
		return nil, fmt.Errorf("create staging folder in %s: %w", imageDir, err)
	}
	// MkdirTemp makes 0700: Hyper-V hosts reading the share as another
	// account could not read the version.
	if err := os.Chmod(dir, dirPerm()); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return &stage{dir: dir, final: final}, nil
}

func (s *stage) discard() {
	if !s.done {
		os.RemoveAll(s.dir)
	}
}

// commit writes md into the stage and renames it into place, then sets the
// pointers. A version someone else committed meanwhile with the same input
// (or the same bits) is "already present"; with another, ErrVersionExists.
func (l *Library) commit(st *stage, md *Metadata, o AddOptions) (*AddResult, error) {
	md.Created = l.now()
	if err := writeJSON(filepath.Join(st.dir, "metadata.json"), md); err != nil {
		return nil, err
	}
	if err := syncDir(st.dir); err != nil {
		return nil, err
	}
	if l.hook != nil {
		l.hook("commit", 0)
	}
	if err := os.Rename(st.dir, st.final); err != nil {
		other, gerr := l.Get(o.Image, o.Version)
		if gerr != nil {
			return nil, fmt.Errorf("move %s %s into place: %w", o.Image, o.Version, err)
		}
		if !sameContent(other, md) {
			return nil, fmt.Errorf("%s %s was added concurrently from another input (stored input sha256 %s, this one %s): %w",
				o.Image, o.Version, cmp.Or(other.InputSHA256, other.SHA256), cmp.Or(md.InputSHA256, md.SHA256), ErrVersionExists)
		}
		if err := l.setPointers(other, o.Channels, false); err != nil {
			return nil, err
		}
		return &AddResult{Metadata: *other, Path: l.DiskPath(other), Existed: true}, nil
	}
	st.done = true
	if err := syncDir(filepath.Dir(st.final)); err != nil {
		return nil, err
	}
	if err := l.setPointers(md, o.Channels, !o.KeepLatest); err != nil {
		return nil, err
	}
	return &AddResult{Metadata: *md, Path: l.DiskPath(md)}, nil
}

// sameContent tells whether two versions hold the same image: the same
// input digest (conversions of one input differ byte-wise: VHDX files carry
// fresh GUIDs), or the same stored bits.
func sameContent(a, b *Metadata) bool {
	if a.InputSHA256 != "" && a.InputSHA256 == b.InputSHA256 {
		return true
	}
	return a.SHA256 == b.SHA256 && a.FileSize == b.FileSize
}

func (l *Library) setPointers(md *Metadata, channels []string, latest bool) error {
	for _, c := range channels {
		if err := l.SetChannel(md.Image, md.Version, c); err != nil {
			return err
		}
	}
	if latest {
		p, err := l.path(md.Image, "latest.json")
		if err != nil {
			return err
		}
		return l.writePointer(md, "latest", p)
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
	dir, err := l.path(image, "channels")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, dirPerm()); err != nil {
		return err
	}
	p, err := l.path(image, "channels", channel+".json")
	if err != nil {
		return err
	}
	return l.writePointer(md, channel, p)
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
	p, err := l.path(image, version, "metadata.json")
	if err != nil {
		return nil, err
	}
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
	elem := []string{image, "latest.json"}
	if channel != "latest" {
		if err := checkName("channel", channel); err != nil {
			return nil, err
		}
		elem = []string{image, "channels", channel + ".json"}
	}
	path, err := l.path(elem...)
	if err != nil {
		return nil, err
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
	p, err := l.path(image, version, "metadata.json")
	if err != nil {
		return nil, err
	}
	if err := writeJSON(p, md); err != nil {
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
	latest, err := l.path(image, "latest.json")
	if err != nil {
		return err
	}
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
	chDir, err := l.path(image, "channels")
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(chDir)
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
	imageDir, err := l.path(image)
	if err != nil {
		return err
	}
	versionDir, err := l.path(image, version)
	if err != nil {
		return err
	}
	aside, err := os.MkdirTemp(imageDir, hiddenPattern(".deleting-", version))
	if err != nil {
		return err
	}
	if err := os.Rename(versionDir, filepath.Join(aside, version)); err != nil {
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
	imageDir, err := l.path(image)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(imageDir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("image %s: %w", image, ErrNotFound)
		}
		return nil, err
	}
	var out []Metadata
	for _, e := range entries {
		if e.Type()&fs.ModeSymlink != 0 && !strings.HasPrefix(e.Name(), ".") {
			return nil, fmt.Errorf("library path %s %w: replace it with a real folder", filepath.Join(imageDir, e.Name()), ErrSymlink)
		}
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
		if e.Type()&fs.ModeSymlink != 0 && checkName("image", e.Name()) == nil {
			return nil, fmt.Errorf("library path %s %w: replace it with a real folder", filepath.Join(l.root, e.Name()), ErrSymlink)
		}
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
		chDir, err := l.path(e.Name(), "channels")
		if err != nil {
			return nil, err
		}
		chs, _ := os.ReadDir(chDir)
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
	p, err := l.path(image, version, md.DiskFile)
	if err != nil {
		return err
	}
	f, err := openNoFollow(p)
	if err != nil {
		return fmt.Errorf("verify %s %s: %w", image, version, err)
	}
	defer f.Close()
	sum, size, err := hashOpen(ctx, f, fn, nil)
	if err != nil {
		return fmt.Errorf("verify %s %s: %w", image, version, err)
	}
	if size != md.FileSize || sum != md.SHA256 {
		return fmt.Errorf("%s %s: %w (recorded %d bytes sha256 %s, found %d bytes sha256 %s); restore it from another copy or revoke it",
			image, version, ErrCorrupt, md.FileSize, md.SHA256, size, sum)
	}
	// A disk stored as it was given is the input itself, so it must also
	// match the input digest recorded. (The library converts to VHDX only,
	// so a record from before InputFormat existed that is not VHDX was
	// stored as given too.)
	storedAsGiven := md.InputFormat == md.Format || (md.InputFormat == "" && md.Format != "vhdx")
	if storedAsGiven && md.InputSHA256 != "" && md.InputSHA256 != md.SHA256 {
		return fmt.Errorf("%s %s: %w: it was stored as given, but its sha256 %s is not the input's recorded sha256 %s (the input changed while it was added); add the input again under a new version and revoke this one",
			image, version, ErrCorrupt, md.SHA256, md.InputSHA256)
	}
	return nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), filePerm())
}

func readJSON(path string, v any) error {
	f, err := openNoFollow(path)
	if err != nil {
		return err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 1<<20))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is not valid library JSON: %w", path, err)
	}
	return nil
}
