package main

// The one way commands locate and open the catalog.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// catalogPolicy says what a command does without a catalog.
type catalogPolicy int

const (
	// required: open the catalog (the per-user default is created if it
	// is the one chosen); failing to is an error before anything changes.
	required catalogPolicy = iota
	// ifPresent: open the catalog when one is configured (--catalog, the
	// pipeline file's catalog block, $IMGPIPE_CATALOG) or the per-user one
	// exists; otherwise there is none (nil, nil). A configured catalog
	// that cannot be opened is still an error.
	ifPresent
	// bestEffort: as ifPresent, but a catalog that cannot be opened is
	// logged and the command goes on without one (destroy, replicate:
	// Azure holds the truth and the catalog follows it).
	bestEffort
)

// catalogChoice is where a command's catalog comes from, in this order:
// --catalog, the pipeline file's catalog block, $IMGPIPE_CATALOG, the
// per-user default.
type catalogChoice struct {
	flag   string
	file   *config.File
	policy catalogPolicy
	// hint is added to an open failure (what to do instead).
	hint string
}

// openCatalogWith opens the chosen catalog and migrates it to the current
// schema.
func openCatalogWith(ctx context.Context, c catalogChoice) (*catalog.Catalog, error) {
	fromFile := ""
	if c.file != nil && c.file.Catalog != nil {
		fromFile = c.file.Catalog.URL
	}
	loc, configured, err := catalog.Locate(c.flag, fromFile)
	if err != nil {
		return nil, err
	}
	if c.policy != required && !configured {
		if _, err := os.Stat(loc); errors.Is(err, os.ErrNotExist) {
			return nil, nil // no catalog here
		}
	}
	cat, err := catalog.Open(ctx, loc)
	if err != nil && c.policy == bestEffort {
		slog.Warn("catalog unavailable: nothing is recorded in it", "catalog", loc, "err", err)
		return nil, nil
	}
	if err != nil {
		if c.hint != "" {
			return nil, fmt.Errorf("open the catalog %s: %w (%s)", loc, err, c.hint)
		}
		return nil, fmt.Errorf("open the catalog %s: %w", loc, err)
	}
	return cat, nil
}

// withCatalog opens the catalog the command's --catalog flag names (else
// $IMGPIPE_CATALOG, else the per-user default) under policy, runs f with it
// and closes it, joining a close failure to f's error. With ifPresent and
// no catalog (or bestEffort and one that cannot be opened), f is called
// with nil. It replaces the open + defer Close
// boilerplate of every catalog verb:
//
//	RunE: func(cmd *cobra.Command, args []string) error {
//		return withCatalog(cmd, required, func(c *catalog.Catalog) error { ... })
//	},
func withCatalog(cmd *cobra.Command, policy catalogPolicy, f func(*catalog.Catalog) error) error {
	return withCatalogOf(cmd, nil, policy, f)
}

// withCatalogOf is withCatalog for a command that read a pipeline file: the
// file's catalog block comes after --catalog and before $IMGPIPE_CATALOG.
func withCatalogOf(cmd *cobra.Command, file *config.File, policy catalogPolicy, f func(*catalog.Catalog) error) (err error) {
	flag, _ := cmd.Flags().GetString("catalog") // "" when the command has no --catalog
	cat, err := openCatalogWith(cmd.Context(), catalogChoice{flag: flag, file: file, policy: policy})
	if err != nil {
		return err
	}
	if cat != nil {
		defer func() {
			if cerr := cat.Close(); cerr != nil {
				err = errors.Join(err, fmt.Errorf("close the catalog: %w", cerr))
			}
		}()
	}
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
