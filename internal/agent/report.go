// Package agent runs a drift check on a machine and reports the result to an
// imgpipe server. The report is the wire format shared with internal/server:
// small (at most MaxReportBytes), bounded (at most MaxChanges findings listed,
// the summary counts them all), and free of secrets (file contents, package
// scripts and environment are never included; only names, counts and which
// attributes changed).
package agent

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"imgpipe/internal/catalog"
	"imgpipe/internal/drift"
)

// Schema names the report format; the server refuses any other.
const Schema = "imgpipe-agent-report/v1"

// Limits of a report. The server enforces them too.
const (
	MaxReportBytes = 64 << 10
	MaxChanges     = 50
	maxName        = 1024
	maxDetail      = 512
	maxCount       = 1 << 30
)

// Report is what an agent sends after a check.
type Report struct {
	Schema   string `json:"schema"`
	Host     string `json:"host"`
	Platform string `json:"platform"` // onprem or azure
	// Region is the site or region the agent is configured with (empty:
	// none; the server keeps the one recorded, e.g. an Azure location).
	Region  string `json:"region,omitempty"`
	OS      string `json:"os"` // GOOS of the agent
	Image   string `json:"image,omitempty"`
	Version string `json:"version,omitempty"`
	BuildID string `json:"build_id,omitempty"`
	// Depth is the check's depth: quick or full.
	Depth      string        `json:"depth,omitempty"`
	CheckedAt  time.Time     `json:"checked_at"`
	DurationMS int64         `json:"duration_ms"`
	Drifted    bool          `json:"drifted"`
	Summary    drift.Summary `json:"summary"`
	// Changes is the head of the findings (at most MaxChanges); Truncated
	// counts those left out.
	Changes   []Change `json:"changes,omitempty"`
	Truncated int      `json:"truncated,omitempty"`
	// Error says why no check could run (no identity or baseline in the
	// image); the report then carries no drift figures.
	Error string `json:"error,omitempty"`
	Agent string `json:"agent,omitempty"` // agent version
}

// Change is one finding, rendered for people.
type Change struct {
	Area   string `json:"area"` // file, package, service, problem
	Kind   string `json:"kind"` // added, removed, changed, problem
	Name   string `json:"name"` // path, package or unit
	Detail string `json:"detail,omitempty"`
}

// Areas and the kinds a change may have.
var (
	areas = map[string]bool{"file": true, "package": true, "service": true, "problem": true}
	kinds = map[string]bool{drift.Added: true, drift.Removed: true, drift.Changed: true, "problem": true}
)

var (
	hostRE    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$`)
	versionRE = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_-]{0,63}$`)
	tokenRE   = regexp.MustCompile(`^[0-9A-Za-z][0-9A-Za-z.+_:-]{0,127}$`)
	regionRE  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
)

// ValidRegion reports whether s is acceptable as a region: 1-64 letters,
// digits, '.', '-' and '_', starting with a letter or digit (an Azure
// location such as westeurope, or a site name).
func ValidRegion(s string) bool { return regionRE.MatchString(s) }

// ErrInvalid marks a report that breaks the format.
var ErrInvalid = errors.New("invalid report")

// ValidHostName reports whether name is acceptable as a host name: letters,
// digits, '.', '-' and '_', starting with a letter or digit, at most 253.
func ValidHostName(name string) bool { return hostRE.MatchString(name) }

// Validate checks every field of a report against the format.
func (r *Report) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
	}
	if r.Schema != Schema {
		return bad("schema %q: this server reads %s", clip(r.Schema), Schema)
	}
	if !ValidHostName(r.Host) {
		return bad("host %q: use 1-253 letters, digits, '.', '-' or '_'", clip(r.Host))
	}
	if r.Platform != catalog.PlatformOnprem && r.Platform != catalog.PlatformAzure {
		return bad("platform %q: use onprem or azure", clip(r.Platform))
	}
	if r.Region != "" && !ValidRegion(r.Region) {
		return bad("region %q: use 1-64 letters, digits, '.', '-' or '_'", clip(r.Region))
	}
	if r.OS != "" && !tokenRE.MatchString(r.OS) {
		return bad("os %q is not a platform name", clip(r.OS))
	}
	if r.Agent != "" && !tokenRE.MatchString(r.Agent) {
		return bad("agent version %q is malformed", clip(r.Agent))
	}
	if r.Error == "" {
		if err := catalog.ValidateImageName(r.Image); err != nil {
			return bad("image %q: %v", clip(r.Image), err)
		}
		if !versionRE.MatchString(r.Version) {
			return bad("version %q: use 1-64 letters, digits, '.', '+', '-' or '_'", clip(r.Version))
		}
		if r.Depth != string(drift.Quick) && r.Depth != string(drift.Full) {
			return bad("depth %q: use quick or full", clip(r.Depth))
		}
	} else {
		if len(r.Error) > maxDetail || !utf8.ValidString(r.Error) {
			return bad("error text longer than %d bytes or not UTF-8", maxDetail)
		}
		if r.Image != "" && catalog.ValidateImageName(r.Image) != nil {
			return bad("image %q is malformed", clip(r.Image))
		}
		if r.Version != "" && !versionRE.MatchString(r.Version) {
			return bad("version %q is malformed", clip(r.Version))
		}
		if r.Depth != "" && r.Depth != string(drift.Quick) && r.Depth != string(drift.Full) {
			return bad("depth %q: use quick or full", clip(r.Depth))
		}
	}
	if r.BuildID != "" && !tokenRE.MatchString(r.BuildID) {
		return bad("build id %q is malformed", clip(r.BuildID))
	}
	if r.CheckedAt.IsZero() || r.CheckedAt.Year() < 2000 || r.CheckedAt.Year() > 9999 {
		return bad("checked_at is missing or out of range")
	}
	if r.DurationMS < 0 || r.DurationMS > 7*24*3600*1000 {
		return bad("duration_ms %d is out of range", r.DurationMS)
	}
	s := r.Summary
	for _, n := range []int{s.FilesAdded, s.FilesRemoved, s.FilesChanged, s.Packages, s.Services, s.Problems, r.Truncated} {
		if n < 0 || n > maxCount {
			return bad("a count is out of range (%d)", n)
		}
	}
	if len(r.Changes) > MaxChanges {
		return bad("%d changes listed, at most %d (count the rest in truncated)", len(r.Changes), MaxChanges)
	}
	for i, c := range r.Changes {
		if !areas[c.Area] || !kinds[c.Kind] {
			return bad("change %d: area %q kind %q", i, clip(c.Area), clip(c.Kind))
		}
		if c.Name == "" || len(c.Name) > maxName || len(c.Detail) > maxDetail || !utf8.ValidString(c.Name) || !utf8.ValidString(c.Detail) {
			return bad("change %d: name must be 1-%d bytes and detail at most %d, UTF-8", i, maxName, maxDetail)
		}
	}
	if r.Drifted != (s.FilesAdded+s.FilesRemoved+s.FilesChanged+s.Packages+s.Services > 0) {
		return bad("drifted=%v disagrees with the summary counts", r.Drifted)
	}
	return nil
}

// clip shortens untrusted text quoted in an error.
func clip(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strings.ToValidUTF8(s, "?")
}

// FromDrift builds a report from a drift check (listing at most max
// findings; max <= 0 or above MaxChanges means MaxChanges).
func FromDrift(d *drift.Report, max int) Report {
	if max <= 0 || max > MaxChanges {
		max = MaxChanges
	}
	r := Report{
		Schema:     Schema,
		Depth:      string(d.Depth),
		CheckedAt:  d.CheckedAt.UTC(),
		DurationMS: d.DurationMS,
		Drifted:    d.Drifted,
		Summary:    d.Summary,
		Truncated:  d.Truncated,
	}
	if d.Identity != nil {
		r.Image, r.Version, r.BuildID = d.Identity.Image, d.Identity.Version, d.Identity.BuildID
	}
	add := func(c Change) bool {
		if len(r.Changes) >= max {
			r.Truncated++
			return false
		}
		c.Name = Cut(c.Name, maxName)
		c.Detail = Cut(c.Detail, maxDetail)
		r.Changes = append(r.Changes, c)
		return true
	}
	for _, p := range d.Packages {
		name := p.Manager + ":" + p.Name
		if p.Arch != "" {
			name += ":" + p.Arch
		}
		detail := strings.TrimSpace(p.Old + " -> " + p.New)
		switch p.Kind {
		case drift.Added:
			detail = p.New
		case drift.Removed:
			detail = p.Old
		}
		add(Change{Area: "package", Kind: p.Kind, Name: name, Detail: detail})
	}
	for _, s := range d.Services {
		detail := s.Old + " -> " + s.New
		switch s.Kind {
		case drift.Added:
			detail = s.New
		case drift.Removed:
			detail = s.Old
		}
		add(Change{Area: "service", Kind: s.Kind, Name: s.Unit, Detail: detail})
	}
	for _, f := range d.Files {
		c := Change{Area: "file", Kind: f.Kind, Name: f.Path.String()}
		if f.Kind == drift.Changed {
			c.Detail = strings.Join(f.Changed, ", ")
			if f.Old != nil && f.New != nil && f.Old.Mode != f.New.Mode {
				c.Detail += " (mode " + f.Old.Mode + " -> " + f.New.Mode + ")"
			}
		} else if f.New != nil {
			c.Detail = f.New.Type.String()
		} else if f.Old != nil {
			c.Detail = f.Old.Type.String()
		}
		add(c)
	}
	for _, p := range d.Problems {
		add(Change{Area: "problem", Kind: "problem", Name: p.Path.String(), Detail: p.Err})
	}
	if r.Image != "" && catalog.ValidateImageName(r.Image) != nil {
		r.Error = "the image identity names an invalid image"
	}
	return r
}
