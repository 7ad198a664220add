package onprem

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrSymlink is returned when a path inside the library is a symbolic link.
// The library never follows one: a link could lead a write (a channel
// pointer, a version) out of the library, and the Hyper-V hosts that read
// the share over SMB would not see what imgpipe saw.
var ErrSymlink = errors.New("is a symbolic link, and the library never follows links")

// path returns the library path of elem (joined below the root), after
// checking that no existing component below the root is a symbolic link.
// The root itself may be one (a mount point, a user's choice). Components
// that do not exist yet are fine: the caller creates them as real folders
// and files.
func (l *Library) path(elem ...string) (string, error) {
	p := l.root
	for _, e := range elem {
		p = filepath.Join(p, e)
		fi, err := os.Lstat(p)
		if errors.Is(err, fs.ErrNotExist) {
			return filepath.Join(append([]string{l.root}, elem...)...), nil
		}
		if err != nil {
			return "", err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return "", fmt.Errorf("library path %s %w: replace it with a real folder or file (an SMB share has no links either)", p, ErrSymlink)
		}
	}
	return p, nil
}

// umask returns the process's file mode creation mask (Linux reports it in
// /proc/self/status; elsewhere the usual 022 is assumed). It is read each
// time rather than cached: it is process state that may change.
func umask() fs.FileMode {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0o022
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			if m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32); err == nil {
				return fs.FileMode(m) & fs.ModePerm
			}
		}
	}
	return 0o022
}

// dirPerm and filePerm are the modes of library folders and files: readable
// by everyone (Hyper-V hosts read the share as other accounts), writable by
// the owner, less what the umask takes away.
func dirPerm() fs.FileMode  { return 0o755 &^ umask() }
func filePerm() fs.FileMode { return 0o644 &^ umask() }

// openNoFollow opens path for reading, refusing a symbolic link as the last
// component (the library's own files are never links).
func openNoFollow(path string) (*os.File, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode()&fs.ModeSymlink != 0 {
		return nil, fmt.Errorf("library path %s %w: replace it with a real file", path, ErrSymlink)
	}
	return os.Open(path)
}
