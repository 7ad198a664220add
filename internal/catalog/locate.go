package catalog

// Where the catalog is: the one place the choice is made.

import (
	"fmt"
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
