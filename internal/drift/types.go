package drift

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"unicode/utf8"
)

// Name is a path relative to the root, slash-separated, holding the file
// name's raw bytes (which need not be valid UTF-8). In JSON a valid UTF-8 name
// is a plain string and any other name is an object {"b64": "..."} holding the
// base64 of its bytes, so every name survives a JSON round trip.
type Name string

// MarshalJSON implements json.Marshaler.
func (n Name) MarshalJSON() ([]byte, error) {
	if utf8.ValidString(string(n)) {
		return json.Marshal(string(n))
	}
	return json.Marshal(struct {
		B64 string `json:"b64"`
	}{base64.StdEncoding.EncodeToString([]byte(n))})
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Name) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*n = Name(s)
		return nil
	}
	var o struct {
		B64 *string `json:"b64"`
	}
	if err := json.Unmarshal(b, &o); err != nil || o.B64 == nil {
		return errors.New("drift: a name is a JSON string or {\"b64\": ...}")
	}
	raw, err := base64.StdEncoding.DecodeString(*o.B64)
	if err != nil {
		return fmt.Errorf("drift: name: %w", err)
	}
	*n = Name(raw)
	return nil
}

// String renders the name for people: invalid UTF-8 bytes are shown as \xNN.
func (n Name) String() string {
	if utf8.ValidString(string(n)) {
		return string(n)
	}
	var out []byte
	s := string(n)
	for len(s) > 0 {
		r, size := utf8.DecodeRuneInString(s)
		if r == utf8.RuneError && size == 1 {
			out = fmt.Appendf(out, `\x%02x`, s[0])
		} else {
			out = append(out, s[:size]...)
		}
		s = s[size:]
	}
	return string(out)
}

// FileType is the kind of a file system entry.
type FileType uint8

// File types. Only TypeRegular entries are opened and hashed.
const (
	TypeUnknown FileType = iota
	TypeRegular
	TypeDir
	TypeSymlink
	TypeFIFO
	TypeSocket
	TypeCharDev
	TypeBlockDev
	typeMax
)

var typeNames = [...]string{"unknown", "file", "dir", "symlink", "fifo", "socket", "chardev", "blockdev"}

func (t FileType) String() string {
	if t < typeMax {
		return typeNames[t]
	}
	return fmt.Sprintf("type(%d)", uint8(t))
}

// MarshalText implements encoding.TextMarshaler.
func (t FileType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (t *FileType) UnmarshalText(b []byte) error {
	for i, n := range typeNames {
		if n == string(b) {
			*t = FileType(i)
			return nil
		}
	}
	return fmt.Errorf("drift: unknown file type %q", b)
}

// HashSize is the length of every content hash (SHA-256 and BLAKE3-256).
const HashSize = 32

// Entry is one file system entry of a baseline or of a live walk.
type Entry struct {
	Path  Name
	Link  string // symlink target, raw bytes
	Err   string // why the entry could not be fully read (then HasHash is false)
	Size  int64
	Mtime int64 // nanoseconds since the Unix epoch
	Ctime int64 // nanoseconds since the Unix epoch; 0 where the platform has none
	Ino   uint64
	Dev   uint64 // only used to find hard links within one walk; never compared
	Rdev  uint64 // device number of character and block devices
	Nlink uint32
	Mode  uint32 // permission bits plus setuid, setgid and sticky (07777)
	UID   uint32
	GID   uint32
	Type  FileType
	// HasHash says Hash holds the content hash (regular files read successfully).
	HasHash bool
	Hash    [HashSize]byte
	// bidx is 1 + the index of the baseline entry with this path, when a
	// quick check already looked it up (0: not looked up).
	bidx int32
}

// Identity says what an image is. It is written into the image at build time
// and read back by the agent.
type Identity struct {
	Image     string `json:"image"`
	Version   string `json:"version"`
	BuildID   string `json:"build_id,omitempty"`
	CatalogID string `json:"catalog_id,omitempty"`
	// CapturedAt is when the baseline was captured (RFC 3339, UTC).
	CapturedAt string `json:"captured_at,omitempty"`
}

// Package is one installed package.
type Package struct {
	Manager string `json:"manager"` // "dpkg" or "rpm"
	Name    string `json:"name"`
	Version string `json:"version"`
	Arch    string `json:"arch,omitempty"`
	// Status is the package manager's state when it is not plainly
	// installed (for example dpkg's "half-configured").
	Status string `json:"status,omitempty"`
}

func (p Package) key() string { return p.Manager + "\x00" + p.Name + "\x00" + p.Arch }

// Service is the state of one systemd unit.
type Service struct {
	Unit string `json:"unit"`
	// State is enabled, disabled, static or masked.
	State string `json:"state"`
	// WantedBy lists the targets whose .wants/.requires directory links it.
	WantedBy []string `json:"wanted_by,omitempty"`
}

// Collector statuses.
const (
	CollectorOK             = "ok"
	CollectorAbsent         = "absent"          // the database is not in this tree
	CollectorNotAvailable   = "not-available"   // the collector does not exist on this platform
	CollectorNotImplemented = "not-implemented" // found, but imgpipe cannot read it
	CollectorError          = "error"
)

// CollectorStatus says what a collector (dpkg, rpm, systemd) did.
type CollectorStatus struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail,omitempty"`
}

// Problem is an entry that could not be fully examined: unreadable, vanished
// or changed while it was read, or not openable safely. Problems never stop
// a walk.
type Problem struct {
	Path Name   `json:"path"`
	Err  string `json:"error"`
}
