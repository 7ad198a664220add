package supplychain

import (
	"context"
	"testing"
)

// TestDiffVersionsChecksItsArguments: sbom diff's names are checked like
// any version argument before the catalog is read.
func TestDiffVersionsChecksItsArguments(t *testing.T) {
	for _, args := range [][3]string{{"web", "1.0.0", "next"}, {"web", "v1", "1.0.0"}, {"", "1.0.0", "1.1.0"}} {
		if _, err := DiffVersions(context.Background(), nil, args[0], args[1], args[2]); err == nil {
			t.Errorf("DiffVersions(%q) accepted", args)
		}
	}
}
