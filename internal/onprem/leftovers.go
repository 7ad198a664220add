package onprem

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// A version is put together in a hidden ".staging-..." folder and a deleted
// one is moved to a hidden ".deleting-..." folder first. A process killed
// meanwhile (kill -9, a crash) leaves that folder behind, possibly holding
// gigabytes. Their names say which process made them,
// ".staging-<version>-<pid>@<host>-<random>", so that a later add on the same
// host removes those whose process is gone. Folders of other hosts are left
// alone: their processes cannot be checked from here.

var leftoverPrefixes = []string{".staging-", ".deleting-"}

// thisHost is the host name as it appears in hidden folder names.
var thisHost = sync.OnceValue(func() string {
	h, _ := os.Hostname()
	return strings.Map(func(r rune) rune {
		if r == '.' || r == '-' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return '_'
	}, h)
})

// hiddenPattern is the os.MkdirTemp pattern of a hidden folder of kind
// (".staging-" or ".deleting-") for version.
func hiddenPattern(kind, version string) string {
	return fmt.Sprintf("%s%s-%d@%s-", kind, version, os.Getpid(), thisHost())
}

// leftoverOwner parses the pid and host out of a hidden folder name.
func leftoverOwner(name string) (pid int, host string, ok bool) {
	at := strings.LastIndexByte(name, '@')
	if at < 0 {
		return 0, "", false
	}
	left, right := name[:at], name[at+1:]
	dash := strings.LastIndexByte(right, '-')
	pdash := strings.LastIndexByte(left, '-')
	if dash < 0 || pdash < 0 {
		return 0, "", false
	}
	pid, err := strconv.Atoi(left[pdash+1:])
	if err != nil || pid <= 0 {
		return 0, "", false
	}
	return pid, right[:dash], true
}

// removeLeftovers removes the hidden folders in imageDir made by processes
// of this host that are gone.
func removeLeftovers(imageDir string) {
	entries, err := os.ReadDir(imageDir)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		hidden := false
		for _, p := range leftoverPrefixes {
			hidden = hidden || strings.HasPrefix(e.Name(), p)
		}
		if !hidden {
			continue
		}
		if pid, host, ok := leftoverOwner(e.Name()); ok && host == thisHost() && !processAlive(pid) {
			os.RemoveAll(filepath.Join(imageDir, e.Name()))
		}
	}
}
