package catalog

import (
	"time"

	"imgpipe/internal/semver"
)

// SemVer is a parsed image version (see package semver).
type SemVer = semver.Version

// ParseVersion parses an image version: MAJOR.MINOR.PATCH[-pre][+build].
func ParseVersion(s string) (SemVer, error) { return semver.Parse(s) }

// CompareVersions orders two version strings by SemVer precedence.
func CompareVersions(a, b string) int { return semver.Compare(a, b) }

// ParseAge parses a retention age such as "90d", "2w" or "36h".
func ParseAge(s string) (time.Duration, error) { return semver.ParseAge(s) }

// FormatAge writes an age the way ParseAge reads it.
func FormatAge(d time.Duration) string { return semver.FormatAge(d) }
