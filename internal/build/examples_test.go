package build

import (
	"os/exec"
	"path/filepath"
	"testing"

	"imgpipe/internal/testenv"
)

// TestExampleTemplatesValidate keeps the shipped templates valid for the
// Packer the project builds on (the demo template itself is run by
// TestDemoImageBoots in cmd/imgpipe, behind IMGPIPE_DEMO_IMAGE=1).
func TestExampleTemplatesValidate(t *testing.T) {
	packer := testenv.RequireTool(t, "packer")
	for _, tc := range []struct {
		dir  string
		vars []string
	}{
		{"handoff", []string{"-var", "version=1.0.0", "-var", "library=/tmp/lib"}},
		{"demo-debian", []string{"-var", "version=1.0.0", "-var", "library=/tmp/lib", "-var", "boot_check=true"}},
	} {
		dir := filepath.Join("..", "..", "examples", "packer", tc.dir)
		args := append(append([]string{"validate"}, tc.vars...), dir)
		cmd := exec.Command(packer, args...)
		cmd.Env = append(cmd.Environ(), "CHECKPOINT_DISABLE=1")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("packer %v: %v\n%s", args, err, out)
		}
	}
}
