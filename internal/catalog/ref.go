package catalog

// How a version and the person acting are named on the command line.

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
)

// errRefArgs says how to name a version.
var errRefArgs = errors.New("name the version as IMAGE VERSION or IMAGE@VERSION (e.g. web 1.4.0)")

// ParseRef reads a version from command-line arguments: "IMAGE VERSION" or
// "IMAGE@VERSION", both checked.
func ParseRef(args []string) (Ref, error) {
	var r Ref
	switch len(args) {
	case 1:
		img, ver, ok := strings.Cut(args[0], "@")
		if !ok {
			return r, fmt.Errorf("%q: %w", args[0], errRefArgs)
		}
		r = Ref{Image: img, Version: ver}
	case 2:
		r = Ref{Image: args[0], Version: args[1]}
	default:
		return r, errRefArgs
	}
	if err := ValidateImageName(r.Image); err != nil {
		return r, err
	}
	if _, err := ParseVersion(r.Version); err != nil {
		return r, err
	}
	return r, nil
}

// RefArgs checks there are one or two arguments to name a version.
func RefArgs(args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errRefArgs
	}
	return nil
}

// WhoAmI names the person acting: by (--by), else $USER, else the account
// name, else "unknown".
func WhoAmI(by string) string {
	if s := strings.TrimSpace(by); s != "" {
		return s
	}
	if s := os.Getenv("USER"); s != "" {
		return s
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}
