package drift

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"slices"
	"strings"
)

// maxDBSize bounds the package databases read into memory.
const maxDBSize = 512 << 20

func notOnThisPlatform(name string) CollectorStatus {
	return CollectorStatus{Name: name, Status: CollectorNotAvailable,
		Detail: name + " collector is not available on " + runtime.GOOS}
}

// collectDpkg reads var/lib/dpkg/status in the tree.
func collectDpkg(root string) ([]Package, CollectorStatus) {
	const name = "dpkg"
	if runtime.GOOS == "windows" {
		return nil, notOnThisPlatform(name)
	}
	p, err := resolveInRoot(root, "var/lib/dpkg/status")
	if err != nil {
		return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, CollectorStatus{Name: name, Status: CollectorAbsent, Detail: "no var/lib/dpkg/status"}
	}
	if err != nil {
		return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
	}
	defer f.Close()
	pkgs, err := ParseDpkgStatus(io.LimitReader(f, maxDBSize))
	if err != nil {
		return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
	}
	return pkgs, CollectorStatus{Name: name, Status: CollectorOK, Detail: fmt.Sprintf("%d packages", len(pkgs))}
}

// ParseDpkgStatus parses dpkg's status file (RFC 822-style paragraphs) and
// returns the packages that are installed or partly installed, sorted by
// name and architecture. Packages only remembered by dpkg (not-installed,
// config-files) are left out.
func ParseDpkgStatus(r io.Reader) ([]Package, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var pkgs []Package
	var cur Package
	var status string
	flush := func() {
		if cur.Name != "" {
			f := strings.Fields(status)
			state := ""
			if len(f) == 3 {
				state = f[2]
			}
			switch state {
			case "installed":
				pkgs = append(pkgs, cur)
			case "not-installed", "config-files", "":
			default:
				cur.Status = state
				pkgs = append(pkgs, cur)
			}
		}
		cur, status = Package{Manager: "dpkg"}, ""
	}
	cur.Manager = "dpkg"
	line := 0
	for sc.Scan() {
		line++
		l := sc.Bytes()
		if len(bytes.TrimSpace(l)) == 0 {
			flush()
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			continue // continuation of a multi-line field (Description, Conffiles)
		}
		k, v, ok := bytes.Cut(l, []byte(":"))
		if !ok {
			return nil, fmt.Errorf("dpkg status line %d: not a \"Field: value\" line", line)
		}
		val := string(bytes.TrimSpace(v))
		switch string(k) {
		case "Package":
			cur.Name = val
		case "Version":
			cur.Version = val
		case "Architecture":
			cur.Arch = val
		case "Status":
			status = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkg status: %w", err)
	}
	flush()
	sortPackages(pkgs)
	return pkgs, nil
}

func sortPackages(p []Package) {
	slices.SortFunc(p, func(a, b Package) int { return strings.Compare(a.key(), b.key()) })
}
