package azemu_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDepcheck keeps the emulator independent of the code it emulates for:
// internal/azemu (and azemutest) may import only atomicfile, testenv and the
// Azurite process starter from imgpipe, so a bug in imgpipe's Azure code
// cannot hide in the emulator.
func TestDepcheck(t *testing.T) {
	allowed := map[string]bool{
		"imgpipe/internal/atomicfile": true,
		"imgpipe/internal/testenv":    true,
		"imgpipe/internal/azurite":    true,
		"imgpipe/internal/azemu":      true,
	}
	for _, pkg := range []string{"imgpipe/internal/azemu", "imgpipe/internal/azemu/azemutest"} {
		out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list %s: %v\n%s", pkg, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if (dep == "imgpipe" || strings.HasPrefix(dep, "imgpipe/")) && !allowed[dep] && dep != pkg {
				t.Errorf("%s depends on %s: the emulator must not import the code it emulates for", pkg, dep)
			}
		}
	}
}
