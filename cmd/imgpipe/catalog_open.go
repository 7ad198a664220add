package main

// The one way commands locate and open the catalog.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

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
	loc, err := resolveCatalogLocation(c.flag, fromFile)
	if err != nil {
		return nil, err
	}
	configured := strings.TrimSpace(c.flag) != "" || strings.TrimSpace(fromFile) != "" || strings.TrimSpace(os.Getenv(catalogEnv)) != ""
	if c.policy == ifPresent && !configured {
		if _, err := os.Stat(loc); errors.Is(err, os.ErrNotExist) {
			return nil, nil // no catalog here
		}
	}
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		if c.hint != "" {
			return nil, fmt.Errorf("open the catalog %s: %w (%s)", loc, err, c.hint)
		}
		return nil, fmt.Errorf("open the catalog %s: %w", loc, err)
	}
	return cat, nil
}
