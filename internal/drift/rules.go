package drift

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// Rules choose what a baseline covers. Paths are the starting points, relative
// to the root ("etc", "usr/lib", or "." for everything). Globs are
// slash-separated and relative to the root: "*", "?" and "[...]" match within
// one path element, "**" matches any number of elements, and a pattern with no
// slash matches the last element at any depth ("*.pyc"). A pattern that
// matches a directory covers everything below it: an excluded directory is
// not walked, and when Include is not empty only entries matching one of its
// globs, or below a directory that does, are recorded (directories are still
// walked).
type Rules struct {
	Paths   []string `json:"paths"`
	Include []string `json:"include,omitempty"`
	Exclude []string `json:"exclude,omitempty"`
}

// DefaultPaths are the configuration-bearing parts of an image for goos.
// Absent paths are skipped.
func DefaultPaths(goos string) []string {
	if goos == "windows" {
		return []string{"Windows/System32", "Program Files", "Program Files (x86)"}
	}
	return []string{"etc", "usr", "boot", "opt", "srv", "bin", "sbin", "lib", "lib32", "lib64", "libx32"}
}

// DefaultExcludes are expected churn: logs, caches, temporary files, virtual
// file systems, per-instance files written at first boot, and imgpipe's own
// identity and baseline files. They apply at capture and at check.
func DefaultExcludes(goos string) []string {
	ex := []string{
		"var/log/**", "var/cache/**", "tmp/**", "var/tmp/**",
		"proc/**", "sys/**", "dev/**", "run/**",
		"etc/imgpipe/**", "ProgramData/imgpipe/**",
	}
	if goos == "windows" {
		return append(ex,
			"Windows/System32/config/**", "Windows/System32/LogFiles/**",
			"Windows/System32/winevt/**", "Windows/System32/sru/**",
			"Windows/System32/spool/**", "Windows/System32/catroot2/**",
			"Windows/System32/wdi/**", "Windows/Prefetch/**")
	}
	return append(ex,
		// Written per instance at first boot (systemd, cloud-init).
		"etc/machine-id", "etc/hostname", "etc/hosts", "etc/resolv.conf", "etc/adjtime")
}

// DefaultRules are DefaultPaths and DefaultExcludes for goos.
func DefaultRules(goos string) Rules {
	return Rules{Paths: DefaultPaths(goos), Exclude: DefaultExcludes(goos)}
}

// glob is one compiled pattern.
type glob struct {
	raw    string
	prefix string   // pattern is "prefix" or "prefix/**": a literal match, fast
	base   string   // pattern has no slash: matches the last element
	segs   []string // general pattern
}

func compileGlob(p string) (glob, error) {
	p = strings.TrimPrefix(path.Clean("/"+strings.TrimSpace(p)), "/")
	if p == "" || p == "." {
		return glob{}, fmt.Errorf("empty glob pattern")
	}
	g := glob{raw: p}
	if !strings.Contains(p, "/") && p != "**" {
		if _, err := path.Match(p, ""); err != nil {
			return glob{}, fmt.Errorf("glob %q: %w", p, err)
		}
		g.base = p
		return g, nil
	}
	lit := strings.TrimSuffix(p, "/**")
	if !strings.ContainsAny(lit, `*?[\`) {
		g.prefix = lit
		return g, nil
	}
	g.segs = strings.Split(p, "/")
	for _, s := range g.segs {
		if s == "**" {
			continue
		}
		if _, err := path.Match(s, ""); err != nil {
			return glob{}, fmt.Errorf("glob %q: %w", p, err)
		}
	}
	return g, nil
}

func (g *glob) match(name string) bool {
	switch {
	case g.prefix != "":
		return name == g.prefix || (len(name) > len(g.prefix) && name[len(g.prefix)] == '/' && strings.HasPrefix(name, g.prefix))
	case g.base != "":
		b := name[strings.LastIndexByte(name, '/')+1:]
		ok, _ := path.Match(g.base, b)
		return ok
	}
	return matchSegs(g.segs, strings.Split(name, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			rest := pat[1:]
			if len(rest) == 0 {
				return true
			}
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// matcher decides what a walk records.
type matcher struct {
	include []glob
	exclude []glob
}

func newMatcher(include, exclude []string) (*matcher, error) {
	m := &matcher{}
	for _, p := range include {
		g, err := compileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("include rule: %w", err)
		}
		m.include = append(m.include, g)
	}
	for _, p := range exclude {
		g, err := compileGlob(p)
		if err != nil {
			return nil, fmt.Errorf("exclude rule: %w", err)
		}
		m.exclude = append(m.exclude, g)
	}
	return m, nil
}

// excluded reports whether name (and, for a directory, its subtree) is left out.
func (m *matcher) excluded(name string) bool {
	for i := range m.exclude {
		if m.exclude[i].match(name) {
			return true
		}
	}
	return false
}

// matchesExactly reports whether name is one of the literal exclude prefixes.
func (m *matcher) matchesExactly(name string) bool {
	for i := range m.exclude {
		if m.exclude[i].prefix == name {
			return true
		}
	}
	return false
}

// underExcluded reports whether name or one of its parents is excluded
// (used on baseline entries, which are not pruned by a walk).
func (m *matcher) underExcluded(name string) bool {
	for {
		if m.excluded(name) {
			return true
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return false
		}
		name = name[:i]
	}
}

// included reports whether a non-pruned entry is recorded.
func (m *matcher) included(name string) bool {
	if len(m.include) == 0 {
		return true
	}
	for {
		for i := range m.include {
			if m.include[i].match(name) {
				return true
			}
		}
		i := strings.LastIndexByte(name, '/')
		if i < 0 {
			return false
		}
		name = name[:i]
	}
}

// cleanPaths normalises the starting points and drops those inside another.
func cleanPaths(paths []string) ([]string, error) {
	var out []string
	for _, p := range paths {
		p = strings.ReplaceAll(p, `\`, "/")
		if slices.Contains(strings.Split(p, "/"), "..") {
			return nil, fmt.Errorf("path %q: \"..\" is not allowed, give paths inside the root", p)
		}
		c := path.Clean("/" + p)
		c = strings.TrimPrefix(c, "/")
		if c == "" {
			c = "."
		}
		out = append(out, c)
	}
	slices.Sort(out)
	out = slices.Compact(out)
	if slices.Contains(out, ".") {
		return []string{"."}, nil
	}
	var kept []string
	for _, p := range out {
		if len(kept) > 0 {
			last := kept[len(kept)-1]
			if strings.HasPrefix(p, last+"/") {
				continue
			}
		}
		kept = append(kept, p)
	}
	return kept, nil
}
