package drift

import (
	"bufio"
	"bytes"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
)

// Unit directories, highest precedence first; /etc/systemd/system is where
// enabling and masking happen.
var unitDirs = []string{"etc/systemd/system", "usr/local/lib/systemd/system", "lib/systemd/system", "usr/lib/systemd/system"}

var unitSuffixes = []string{".service", ".socket", ".timer", ".path", ".target", ".mount", ".automount", ".swap"}

func isUnitName(n string) bool {
	for _, s := range unitSuffixes {
		if strings.HasSuffix(n, s) && len(n) > len(s) {
			return true
		}
	}
	return false
}

// collectSystemd reads unit states from the file system: a unit linked from
// an etc/systemd/system/*.wants or *.requires directory is enabled, a unit
// linked to /dev/null in etc/systemd/system is masked, a unit with an
// [Install] section is otherwise disabled, and one without is static.
func collectSystemd(root string) ([]Service, CollectorStatus) {
	const name = "systemd"
	if runtime.GOOS == "windows" {
		return nil, notOnThisPlatform(name)
	}
	etc, err := resolveInRoot(root, unitDirs[0])
	if err != nil {
		return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
	}
	// Enablement links.
	wantedBy := map[string][]string{}
	masked := map[string]bool{}
	aliases := map[string]string{}
	ents, err := os.ReadDir(etc)
	if err != nil && !os.IsNotExist(err) {
		return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
	}
	for _, e := range ents {
		n := e.Name()
		switch {
		case e.IsDir() && (strings.HasSuffix(n, ".wants") || strings.HasSuffix(n, ".requires")):
			target := strings.TrimSuffix(strings.TrimSuffix(n, ".wants"), ".requires")
			sub, err := os.ReadDir(filepath.Join(etc, n))
			if err != nil {
				return nil, CollectorStatus{Name: name, Status: CollectorError, Detail: err.Error()}
			}
			for _, s := range sub {
				if isUnitName(s.Name()) {
					wantedBy[s.Name()] = append(wantedBy[s.Name()], target)
				}
			}
		case e.Type()&os.ModeSymlink != 0 && isUnitName(n):
			t, err := os.Readlink(filepath.Join(etc, n))
			if err != nil {
				continue
			}
			if t == "/dev/null" {
				masked[n] = true
			} else {
				aliases[n] = filepath.Base(t)
			}
		}
	}
	// Unit files, first directory wins.
	units := map[string]string{} // unit -> host path of its file
	seenDir := map[string]bool{}
	found := false
	for _, d := range unitDirs {
		p, err := resolveInRoot(root, d)
		if err != nil || seenDir[p] {
			continue
		}
		seenDir[p] = true
		ents, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		found = true
		for _, e := range ents {
			n := e.Name()
			if !isUnitName(n) || !e.Type().IsRegular() {
				continue
			}
			if _, ok := units[n]; !ok {
				units[n] = filepath.Join(p, n)
			}
		}
	}
	if !found && len(wantedBy) == 0 {
		return nil, CollectorStatus{Name: name, Status: CollectorAbsent, Detail: "no systemd unit directories"}
	}
	var out []Service
	add := func(s Service) {
		slices.Sort(s.WantedBy)
		s.WantedBy = slices.Compact(s.WantedBy)
		out = append(out, s)
	}
	for u, p := range units {
		s := Service{Unit: u}
		switch {
		case masked[u]:
			s.State = "masked"
		case len(wantedBy[u]) > 0:
			s.State, s.WantedBy = "enabled", wantedBy[u]
		case hasInstallSection(p):
			s.State = "disabled"
		default:
			s.State = "static"
		}
		add(s)
	}
	for u, w := range wantedBy {
		if _, ok := units[u]; !ok && !masked[u] {
			add(Service{Unit: u, State: "enabled", WantedBy: w}) // template instances and links to units elsewhere
		}
	}
	for u := range masked {
		if _, ok := units[u]; !ok {
			add(Service{Unit: u, State: "masked"})
		}
	}
	for u, t := range aliases {
		if _, ok := units[u]; !ok && !masked[u] {
			add(Service{Unit: u, State: "alias", WantedBy: []string{t}})
		}
	}
	slices.SortFunc(out, func(a, b Service) int { return strings.Compare(a.Unit, b.Unit) })
	return out, CollectorStatus{Name: name, Status: CollectorOK}
}

// hasInstallSection reports whether a unit file can be enabled.
func hasInstallSection(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(io.LimitReader(f, 1<<20))
	in := false
	for sc.Scan() {
		l := bytes.TrimSpace(sc.Bytes())
		if len(l) > 0 && l[0] == '[' {
			in = string(l) == "[Install]"
			continue
		}
		if in {
			for _, k := range []string{"WantedBy=", "RequiredBy=", "Alias=", "Also=", "UpheldBy="} {
				if bytes.HasPrefix(l, []byte(k)) && len(bytes.TrimSpace(l[len(k):])) > 0 {
					return true
				}
			}
		}
	}
	return false
}
