package main

// Shared plumbing of the catalog verbs (images, versions, show, promote,
// revoke, runs, gc): where the catalog is, who is acting, and how a version
// is named on the command line. Other verbs that record into the catalog
// (build, publish, serve) use addCatalogFlag and openCatalog too.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/view"
)

const catalogEnv = catalog.EnvCatalog

const catalogFlagHelp = "catalog: a SQLite file path or a postgres:// URL (default $" + catalogEnv +
	", else $XDG_STATE_HOME/imgpipe/catalog.db or ~/.local/state/imgpipe/catalog.db)"

// addCatalogFlag adds --catalog to a command. p may be nil when the command
// opens its catalog with withCatalog (which reads the flag itself).
func addCatalogFlag(cmd *cobra.Command, p *string) {
	if p == nil {
		p = new(string)
	}
	cmd.Flags().StringVar(p, "catalog", "", catalogFlagHelp)
}

// openCatalog opens the catalog named by the --catalog flag value (or the
// environment, or the default) and migrates it to the current schema.
func openCatalog(ctx context.Context, flag string) (*catalog.Catalog, error) {
	return openCatalogWith(ctx, catalogChoice{flag: flag, policy: required})
}

// whoAmI names the person acting: --by, else $USER, else the account name.
func whoAmI(by string) string {
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

// parseRef reads a version from the command line: "IMAGE VERSION" or
// "IMAGE@VERSION".
func parseRef(args []string) (catalog.Ref, error) {
	var r catalog.Ref
	switch len(args) {
	case 1:
		img, ver, ok := strings.Cut(args[0], "@")
		if !ok {
			return r, fmt.Errorf("%q: name the version as IMAGE VERSION or IMAGE@VERSION (e.g. web 1.4.0)", args[0])
		}
		r = catalog.Ref{Image: img, Version: ver}
	case 2:
		r = catalog.Ref{Image: args[0], Version: args[1]}
	default:
		return r, errors.New("name the version as IMAGE VERSION or IMAGE@VERSION (e.g. web 1.4.0)")
	}
	if err := catalog.ValidateImageName(r.Image); err != nil {
		return r, err
	}
	if _, err := catalog.ParseVersion(r.Version); err != nil {
		return r, err
	}
	return r, nil
}

func refArgs(cmd *cobra.Command, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return errors.New("name the version as IMAGE VERSION or IMAGE@VERSION (e.g. web 1.4.0)")
	}
	return nil
}

// fmtWhen, dash and shortHash are view's, for the verbs' own lines.
func fmtWhen(t time.Time) string { return view.When(t) }
func dash(s string) string       { return view.Dash(s) }
func shortHash(s string) string  { return view.Short(s) }
