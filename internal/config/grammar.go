package config

import (
	"imgpipe/internal/semver"
	"time"
)

// ParseDuration reads a duration of the pipeline file: the one duration
// grammar imgpipe's flags share (Go durations such as "90m", plus days and
// weeks: "90d", "2w", "1d12h").
func ParseDuration(s string) (time.Duration, error) { return semver.ParseAge(s) }

func parseDate(s string) (time.Time, error) {
	if t, err := time.Parse("2006-01-02", s); err == nil {
		return t.UTC(), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	return t.UTC(), err
}

// ValidVersion reports whether s is a Major.Minor.Patch gallery version name
// (semver.ParseGallery, the one place that grammar is checked).
func ValidVersion(s string) bool { return semver.ValidGallery(s) }

// FormatDuration writes a duration the way ParseDuration reads it (whole
// days as "30d").
func FormatDuration(d time.Duration) string { return semver.FormatAge(d) }

// Duration is a time.Duration read and written with the one duration
// grammar (ParseDuration), as a command-line flag's value (pflag.Value).
type Duration time.Duration

// Set reads s (ParseDuration).
func (d *Duration) Set(s string) error {
	v, err := ParseDuration(s)
	if err == nil {
		*d = Duration(v)
	}
	return err
}

func (d *Duration) String() string { return FormatDuration(time.Duration(*d)) }

// Type names the value in --help.
func (d *Duration) Type() string { return "duration" }
