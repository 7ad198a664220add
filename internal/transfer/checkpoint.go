package transfer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"imgpipe/internal/atomicfile"
)

// checkpointVersion is the layout version of the checkpoint file.
const checkpointVersion = 1

// maxCheckpointSize bounds what decodeCheckpoint accepts, so a damaged or
// hostile file cannot make us allocate without limit.
const maxCheckpointSize = 64 << 20

// CheckpointSuffix is appended to the source path to name the default
// checkpoint file.
const CheckpointSuffix = ".imgpipe-upload.json"

// Checkpoint is the resumable state of one upload, stored next to the source.
// It never holds a secret: the target is named by its URL without query
// string (no SAS) or by its resource id, and no key is ever written.
type Checkpoint struct {
	Version int               `json:"version"`
	Source  SourceFingerprint `json:"source"`
	Target  TargetIdentity    `json:"target"`
	// Marker proves the target is the one this upload created: a random id
	// stored in the blob's metadata, or the managed disk's unique id.
	Marker string `json:"marker"`
	// Plan names the range planning that produced Completed; a resume with a
	// different plan could leave holes, so it is refused.
	Plan PlanFingerprint `json:"plan"`
	// Completed are the byte spans of the virtual fixed VHD that are known to
	// be on the target (data sent, zeros skipped), as sorted [start, end) pairs.
	Completed      [][2]int64 `json:"completed"`
	CompletedBytes int64      `json:"completed_bytes"`
	Updated        time.Time  `json:"updated"`
}

// SourceFingerprint identifies the source image cheaply but firmly enough to
// refuse resuming after it changed.
type SourceFingerprint struct {
	Path        string    `json:"path"`
	FileSize    int64     `json:"file_size"`
	ModTime     time.Time `json:"mtime"`
	Format      string    `json:"format"`
	VirtualSize int64     `json:"virtual_size"` // of the Azure fixed VHD view, footer included
	// Content is a SHA-256 over the first and last MiB of the file and the
	// allocation map (which for VHD/VHDX is derived from the BAT).
	Content string `json:"content_sha256"`
}

// PlanFingerprint identifies the range planning algorithm and its input.
type PlanFingerprint struct {
	Algorithm string `json:"algorithm"`
	Window    int64  `json:"window"`
	Sector    int64  `json:"sector"`
	Extents   string `json:"extents_sha256"`
}

// TargetIdentity names a target without any secret.
type TargetIdentity struct {
	Kind string `json:"kind"` // "blob" or "disk"
	// URL is the blob URL without query string (blob targets).
	URL string `json:"url,omitempty"`
	// DiskID is the managed disk resource id (disk targets).
	DiskID string `json:"disk_id,omitempty"`
}

func (t TargetIdentity) String() string {
	if t.Kind == "disk" {
		return "managed disk " + t.DiskID
	}
	return "page blob " + t.URL
}

func (c *Checkpoint) completedSet() *spanSet {
	ss := &spanSet{}
	for _, p := range c.Completed {
		ss.add(span{p[0], p[1]})
	}
	return ss
}

func (c *Checkpoint) setCompleted(spans []span) {
	c.Completed = make([][2]int64, len(spans))
	c.CompletedBytes = 0
	for i, s := range spans {
		c.Completed[i] = [2]int64{s.Start, s.End}
		c.CompletedBytes += s.len()
	}
}

// encodeCheckpoint renders c as indented JSON.
func encodeCheckpoint(c *Checkpoint) ([]byte, error) {
	b, err := json.MarshalIndent(c, "", " ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// ErrBadCheckpoint marks a checkpoint file that cannot be used.
var ErrBadCheckpoint = errors.New("unusable upload checkpoint")

// decodeCheckpoint parses and validates a checkpoint file.
func decodeCheckpoint(r io.Reader) (*Checkpoint, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxCheckpointSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxCheckpointSize {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadCheckpoint, maxCheckpointSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var c Checkpoint
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: trailing data", ErrBadCheckpoint)
	}
	if err := c.validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

func (c *Checkpoint) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrBadCheckpoint, fmt.Sprintf(format, a...))
	}
	if c.Version != checkpointVersion {
		return bad("version %d, this imgpipe writes version %d", c.Version, checkpointVersion)
	}
	if c.Source.VirtualSize <= 0 || c.Source.VirtualSize%sectorSize != 0 {
		return bad("virtual size %d is not a positive multiple of %d", c.Source.VirtualSize, sectorSize)
	}
	if c.Target.Kind != "blob" && c.Target.Kind != "disk" {
		return bad("target kind %q", c.Target.Kind)
	}
	var prev, total int64
	for i, p := range c.Completed {
		if p[0] < prev || p[1] <= p[0] || p[1] > c.Source.VirtualSize || (i > 0 && p[0] <= prev) {
			return bad("completed range %d [%d, %d) is out of order or out of bounds", i, p[0], p[1])
		}
		prev = p[1]
		total += p[1] - p[0]
	}
	if total != c.CompletedBytes {
		return bad("completed_bytes %d does not match the ranges (%d)", c.CompletedBytes, total)
	}
	return nil
}

// LoadCheckpoint reads and validates the checkpoint at path (for example to
// find the target of an interrupted upload); a missing file returns (nil, nil).
func LoadCheckpoint(path string) (*Checkpoint, error) { return loadCheckpoint(path) }

// loadCheckpoint reads the checkpoint at path; a missing file returns
// (nil, nil).
func loadCheckpoint(path string) (*Checkpoint, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("open checkpoint: %w", err)
	}
	defer f.Close()
	c, err := decodeCheckpoint(f)
	if err != nil {
		return nil, fmt.Errorf("read checkpoint %s: %w (delete it to start the upload over)", path, err)
	}
	return c, nil
}

func saveCheckpoint(path string, c *Checkpoint) error {
	c.Updated = time.Now().UTC().Truncate(time.Millisecond)
	b, err := encodeCheckpoint(c)
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}
