// Package semver parses and orders image versions (SemVer 2.0.0, of which
// Azure Compute Gallery versions are the MAJOR.MINOR.PATCH subset) and
// retention ages such as "90d". It has no dependencies so its fuzz targets
// build fast.
package semver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrInvalid is returned (wrapped) for input that does not parse.
var ErrInvalid = errors.New("invalid input")

// Version is a parsed image version: MAJOR.MINOR.PATCH with an optional
// -prerelease and +build (SemVer 2.0.0). Azure Compute Gallery versions are the
// plain MAJOR.MINOR.PATCH subset; a leading "v" is accepted and dropped.
type Version struct {
	Major, Minor, Patch uint64
	Pre                 []string // dot-separated prerelease identifiers
	Build               string
}

const maxVersionLen = 256

// Parse parses s as a semantic version.
func Parse(s string) (Version, error) {
	var v Version
	if len(s) > maxVersionLen {
		return v, fmt.Errorf("%w: version is longer than %d characters", ErrInvalid, maxVersionLen)
	}
	in := strings.TrimPrefix(s, "v")
	if i := strings.IndexByte(in, '+'); i >= 0 {
		v.Build = in[i+1:]
		in = in[:i]
		if err := checkIdents(v.Build, false); err != nil {
			return Version{}, fmt.Errorf("%w: version %q: build metadata: %v", ErrInvalid, s, err)
		}
	}
	if i := strings.IndexByte(in, '-'); i >= 0 {
		pre := in[i+1:]
		in = in[:i]
		if err := checkIdents(pre, true); err != nil {
			return Version{}, fmt.Errorf("%w: version %q: prerelease: %v", ErrInvalid, s, err)
		}
		v.Pre = strings.Split(pre, ".")
	}
	parts := strings.Split(in, ".")
	if len(parts) != 3 {
		return Version{}, fmt.Errorf("%w: version %q: want MAJOR.MINOR.PATCH, e.g. 1.4.0", ErrInvalid, s)
	}
	nums := []*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if !isNumeric(p) || (len(p) > 1 && p[0] == '0') {
			return Version{}, fmt.Errorf("%w: version %q: %q is not a number without leading zeros", ErrInvalid, s, p)
		}
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return Version{}, fmt.Errorf("%w: version %q: %q is too large", ErrInvalid, s, p)
		}
		*nums[i] = n
	}
	return v, nil
}

func isNumeric(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func checkIdents(s string, pre bool) error {
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return fmt.Errorf("empty identifier")
		}
		for i := 0; i < len(id); i++ {
			ch := id[i]
			if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch == '-') {
				return fmt.Errorf("character %q not allowed", ch)
			}
		}
		if pre && isNumeric(id) && len(id) > 1 && id[0] == '0' {
			return fmt.Errorf("numeric identifier %q has a leading zero", id)
		}
	}
	return nil
}

// String formats v canonically (without a leading v).
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Compare returns -1, 0 or +1 by SemVer precedence (build metadata ignored).
func (v Version) Compare(o Version) int {
	for _, p := range [][2]uint64{{v.Major, o.Major}, {v.Minor, o.Minor}, {v.Patch, o.Patch}} {
		if p[0] != p[1] {
			if p[0] < p[1] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(v.Pre) == 0 && len(o.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1 // a release is newer than its prereleases
	case len(o.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(o.Pre); i++ {
		a, b := v.Pre[i], o.Pre[i]
		an, bn := isNumeric(a), isNumeric(b)
		switch {
		case an && bn:
			if len(a) != len(b) { // no leading zeros: longer is larger
				return cmpInt(len(a), len(b))
			}
			if a != b {
				return strings.Compare(a, b)
			}
		case an:
			return -1
		case bn:
			return 1
		default:
			if a != b {
				return strings.Compare(a, b)
			}
		}
	}
	return cmpInt(len(v.Pre), len(o.Pre))
}

func cmpInt(a, b int) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// Compare orders two version strings by SemVer; strings that do not
// parse sort before every valid version, and among themselves by text.
func Compare(a, b string) int {
	va, ea := Parse(a)
	vb, eb := Parse(b)
	switch {
	case ea == nil && eb == nil:
		if c := va.Compare(vb); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	case ea != nil && eb != nil:
		return strings.Compare(a, b)
	case ea != nil:
		return -1
	}
	return 1
}

const maxAgeLen = 64

// ParseAge parses a retention age such as "90d", "2w", "36h", "1h30m" or
// "0". Days (d) and weeks (w) are 24h and 7d; everything else follows
// time.ParseDuration. Negative ages are refused.
func ParseAge(s string) (time.Duration, error) {
	if len(s) > maxAgeLen {
		return 0, fmt.Errorf("%w: age is longer than %d characters", ErrInvalid, maxAgeLen)
	}
	in := strings.TrimSpace(s)
	if in == "" {
		return 0, fmt.Errorf("%w: empty age: use e.g. 30d, 2w or 12h", ErrInvalid)
	}
	if in == "0" {
		return 0, nil
	}
	var total time.Duration
	rest := in
	for rest != "" {
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9') {
			i++
		}
		if i == 0 {
			break // leave non-day units (or a sign) to time.ParseDuration
		}
		if i < len(rest) && (rest[i] == 'd' || rest[i] == 'w') {
			n, err := strconv.ParseInt(rest[:i], 10, 64)
			unit := 24 * time.Hour
			if rest[i] == 'w' {
				unit *= 7
			}
			const maxUnits = int64(1<<63-1) / int64(7*24*time.Hour)
			if err != nil || n > maxUnits {
				return 0, fmt.Errorf("%w: age %q is too large", ErrInvalid, s)
			}
			add := time.Duration(n) * unit
			if total > time.Duration(1<<63-1)-add {
				return 0, fmt.Errorf("%w: age %q is too large", ErrInvalid, s)
			}
			total += add
			rest = rest[i+1:]
			continue
		}
		break
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("%w: age %q: use a number with d, w, h, m or s (e.g. 30d, 2w, 12h)", ErrInvalid, s)
		}
		if d < 0 {
			return 0, fmt.Errorf("%w: age %q is negative", ErrInvalid, s)
		}
		if total > time.Duration(1<<63-1)-d {
			return 0, fmt.Errorf("%w: age %q is too large", ErrInvalid, s)
		}
		total += d
	}
	return total, nil
}

// FormatAge writes an age the way ParseAge reads it (whole days as "30d").
func FormatAge(d time.Duration) string {
	if d == 0 {
		return "0"
	}
	if d > 0 && d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", d/(24*time.Hour))
	}
	return d.String()
}

// maxGalleryPart is the largest number in an Azure Compute Gallery version
// name: each part is a 32-bit integer ("MajorVersion.MinorVersion.Patch",
// Microsoft.Compute galleries/images/versions name rules).
const maxGalleryPart = 1<<31 - 1

// ParseGallery parses a version as Azure Compute Gallery names versions:
// MAJOR.MINOR.PATCH, each a 32-bit integer without leading zeros, with no
// "v", prerelease or build metadata. It is the one place that grammar is
// checked (the pipeline file, --version, next-patch).
func ParseGallery(s string) (Version, error) {
	if strings.HasPrefix(s, "v") || strings.ContainsAny(s, "-+") {
		return Version{}, fmt.Errorf("%w: version %q: Azure Compute Gallery versions are MAJOR.MINOR.PATCH only, e.g. 1.4.0", ErrInvalid, s)
	}
	v, err := Parse(s)
	if err != nil {
		return Version{}, err
	}
	if v.Major > maxGalleryPart || v.Minor > maxGalleryPart || v.Patch > maxGalleryPart {
		return Version{}, fmt.Errorf("%w: version %q: each part must be at most %d", ErrInvalid, s, maxGalleryPart)
	}
	return v, nil
}

// ValidGallery reports whether s is a gallery version name (ParseGallery).
func ValidGallery(s string) bool {
	_, err := ParseGallery(s)
	return err == nil
}
