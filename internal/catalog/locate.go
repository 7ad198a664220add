package catalog

// Where the catalog is: the one place the choice is made.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// EnvCatalog names the catalog (a SQLite path or a postgres:// URL) when
// neither the command line nor the pipeline file does.
const EnvCatalog = "IMGPIPE_CATALOG"

// DefaultLocation is the per-user SQLite catalog under the XDG state
// directory ($XDG_STATE_HOME/imgpipe/catalog.db, else
// ~/.local/state/imgpipe/catalog.db).
func DefaultLocation() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" && filepath.IsAbs(d) {
		return filepath.Join(d, "imgpipe", "catalog.db"), nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory for the default catalog: give --catalog or set %s: %w", EnvCatalog, err)
	}
	return filepath.Join(home, ".local", "state", "imgpipe", "catalog.db"), nil
}

// Locate picks the catalog: flag (--catalog), then fromFile (the pipeline
// file's catalog block), then $IMGPIPE_CATALOG, then DefaultLocation.
// configured says whether one of the first three named it.
func Locate(flag, fromFile string) (loc string, configured bool, err error) {
	for _, s := range []string{flag, fromFile, os.Getenv(EnvCatalog)} {
		if strings.TrimSpace(s) != "" {
			return s, true, nil
		}
	}
	loc, err = DefaultLocation()
	return loc, false, err
}

// Need says what a command does when there is no catalog.
type Need int

const (
	// Required: open the catalog (the per-user default is created when it
	// is the one chosen); failing to is an error before anything changes.
	Required Need = iota
	// IfPresent: open the catalog when one is configured (the flag, the
	// pipeline file, $IMGPIPE_CATALOG) or the per-user one exists;
	// otherwise there is none (nil, nil). A configured catalog that
	// cannot be opened is still an error.
	IfPresent
	// BestEffort: as IfPresent, but a catalog that cannot be opened is
	// logged and there is none (destroy, replicate: Azure holds the truth
	// and the catalog follows it).
	BestEffort
)

// OpenLocated opens the catalog Locate(flag, fromFile) picks, as need says,
// and migrates it to the current schema; hint is added to an open failure
// (what to do instead).
func OpenLocated(ctx context.Context, flag, fromFile string, need Need, hint string) (*Catalog, error) {
	loc, configured, err := Locate(flag, fromFile)
	if err != nil {
		return nil, err
	}
	if need != Required && !configured {
		if _, err := os.Stat(loc); errors.Is(err, os.ErrNotExist) {
			return nil, nil // no catalog here
		}
	}
	cat, err := Open(ctx, loc)
	switch {
	case err != nil && need == BestEffort:
		slog.Warn("catalog unavailable: nothing is recorded in it", "catalog", loc, "err", err)
		return nil, nil
	case err != nil && hint != "":
		return nil, fmt.Errorf("open the catalog %s: %w (%s)", loc, err, hint)
	case err != nil:
		return nil, fmt.Errorf("open the catalog %s: %w", loc, err)
	}
	return cat, nil
}
