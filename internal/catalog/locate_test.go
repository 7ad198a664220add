package catalog

import (
	"path/filepath"
	"testing"
)

// TestLocate: --catalog, then the pipeline file's block, then
// $IMGPIPE_CATALOG, then the per-user default (XDG_STATE_HOME only when
// absolute).
func TestLocate(t *testing.T) {
	state := t.TempDir()
	t.Setenv(EnvCatalog, "")
	t.Setenv("XDG_STATE_HOME", state)
	if got, configured, err := Locate("", ""); err != nil || configured || got != filepath.Join(state, "imgpipe", "catalog.db") {
		t.Errorf("default under XDG_STATE_HOME: %q %v %v", got, configured, err)
	}
	t.Setenv("XDG_STATE_HOME", "relative/ignored")
	t.Setenv("HOME", state)
	got, err := DefaultLocation()
	if err != nil || got != filepath.Join(state, ".local", "state", "imgpipe", "catalog.db") {
		t.Errorf("default without XDG_STATE_HOME: %q %v", got, err)
	}
	if loc, configured, _ := Locate("", "postgres://db/x"); loc != "postgres://db/x" || !configured {
		t.Errorf("pipeline catalog not used: %q", loc)
	}
	if loc, _, _ := Locate("/flag.db", "postgres://db/x"); loc != "/flag.db" {
		t.Errorf("--catalog does not win: %q", loc)
	}
	t.Setenv(EnvCatalog, "/env.db")
	if loc, configured, _ := Locate(" ", ""); loc != "/env.db" || !configured {
		t.Errorf("$IMGPIPE_CATALOG not used: %q", loc)
	}
	if loc, _, _ := Locate("", "postgres://db/x"); loc != "postgres://db/x" {
		t.Errorf("the environment won over the pipeline file: %q", loc)
	}
}
