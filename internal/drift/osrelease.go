package drift

import (
	"bufio"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
)

// OSRelease is what the tree's os-release file says of its distribution
// (freedesktop os-release(5)); the SBOM names packages by it.
type OSRelease struct {
	ID              string `json:"id"`
	VersionID       string `json:"version_id,omitempty"`
	VersionCodename string `json:"version_codename,omitempty"`
	PrettyName      string `json:"pretty_name,omitempty"`
}

// maxOSReleaseSize bounds the read: real os-release files are a few hundred bytes.
const maxOSReleaseSize = 64 << 10

// ReadOSRelease reads etc/os-release, or usr/lib/os-release when the first
// does not exist, inside root (links resolved as if root were "/"). It returns
// nil, nil when the tree has neither (a Windows tree, say).
func ReadOSRelease(root string) (*OSRelease, error) {
	for _, rel := range []string{"etc/os-release", "usr/lib/os-release"} {
		p, err := resolveInRoot(root, rel)
		if err != nil {
			return nil, err
		}
		f, err := os.Open(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return ParseOSRelease(io.LimitReader(f, maxOSReleaseSize))
	}
	return nil, nil
}

// ParseOSRelease parses os-release's shell-like KEY=value lines.
func ParseOSRelease(r io.Reader) (*OSRelease, error) {
	var o OSRelease
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		if uq, err := strconv.Unquote(v); err == nil && len(v) > 1 && v[0] == '"' {
			v = uq
		} else {
			v = strings.Trim(v, `'"`)
		}
		switch k {
		case "ID":
			o.ID = v
		case "VERSION_ID":
			o.VersionID = v
		case "VERSION_CODENAME":
			o.VersionCodename = v
		case "PRETTY_NAME":
			o.PrettyName = v
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if o.ID == "" {
		o.ID = "linux" // os-release(5): ID defaults to "linux"
	}
	return &o, nil
}
