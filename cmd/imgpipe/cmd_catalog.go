package main

// The catalog verbs' shared plumbing: where the catalog is (one way:
// pipeline.OpenCatalog, as a catalog.Need says), who is acting and how a
// version is named on the command line.

import (
	"cmp"
	"context"
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
)

const (
	catalogEnv = catalog.EnvCatalog
	required   = catalog.Required
	ifPresent  = catalog.IfPresent
)

// addCatalogFlag adds --catalog to a command. p may be nil when the command
// opens its catalog with withCatalog (which reads the flag itself).
func addCatalogFlag(cmd *cobra.Command, p *string) {
	cmd.Flags().StringVar(cmp.Or(p, new(string)), "catalog", "", "catalog: a SQLite file path or a postgres:// URL (default $"+catalogEnv+
		", else $XDG_STATE_HOME/imgpipe/catalog.db or ~/.local/state/imgpipe/catalog.db)")
}

// openCatalog opens the catalog flag names (required).
func openCatalog(ctx context.Context, flag string) (*catalog.Catalog, error) {
	return pipeline.OpenCatalog(ctx, flag, nil, required, "")
}

// withCatalog opens the catalog the command's --catalog flag names under
// policy, runs f with it (nil when there is none) and closes it.
func withCatalog(cmd *cobra.Command, policy catalog.Need, f func(*catalog.Catalog) error) error {
	return withCatalogOf(cmd, nil, policy, f)
}

// withCatalogOf is withCatalog after the pipeline file's catalog block.
func withCatalogOf(cmd *cobra.Command, file *config.File, policy catalog.Need, f func(*catalog.Catalog) error) (err error) {
	flag, _ := cmd.Flags().GetString("catalog") // "" when the command has no --catalog
	cat, err := pipeline.OpenCatalog(cmd.Context(), flag, file, policy, "")
	if err != nil {
		return err
	} else if cat == nil {
		return f(nil)
	}
	defer func() {
		if cerr := cat.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the catalog: %w", cerr))
		}
	}()
	return f(cat)
}

// withVersion reads IMAGE VERSION (or IMAGE@VERSION) from args, then runs f
// with the required catalog (see withCatalog).
func withVersion(cmd *cobra.Command, args []string, f func(*catalog.Catalog, catalog.Ref) error) error {
	ref, err := parseRef(args)
	if err != nil {
		return err
	}
	return withCatalog(cmd, required, func(c *catalog.Catalog) error { return f(c, ref) })
}

var (
	whoAmI   = catalog.WhoAmI   // --by, else $USER, else the account name
	parseRef = catalog.ParseRef // IMAGE VERSION or IMAGE@VERSION
)

func refArgs(_ *cobra.Command, args []string) error { return catalog.RefArgs(args) }
