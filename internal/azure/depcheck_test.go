package azure_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoCatalogDependency keeps internal/azure knowing nothing of the
// catalog (and of the engine above it): translation between Azure and the
// catalog lives in internal/pipeline.
func TestNoCatalogDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "imgpipe/internal/azure").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		switch dep {
		case "imgpipe/internal/catalog", "imgpipe/internal/pipeline", "imgpipe/internal/server":
			t.Errorf("internal/azure depends on %s", dep)
		}
	}
}
