package rollout

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
)

// ScriptsOf writes the scripts of the rollout recorded as id (WriteScripts).
func ScriptsOf(ctx context.Context, cat *catalog.Catalog, id int64, dir string) ([]string, error) {
	r, err := cat.RolloutByID(ctx, id)
	if err != nil {
		return nil, err
	}
	return WriteScripts(r, dir)
}

// WriteScripts writes the plan of every member of r still waiting for it:
// DIR/MEMBER.ps1 for an on-prem host's replacement script, DIR/MEMBER.txt
// for a standalone VM's plan or a member that cannot be replaced as planned.
// Each file is written whole or not at all; it returns the paths.
func WriteScripts(r catalog.Rollout, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("scripts of rollout %d: %w", r.ID, err)
	}
	written := []string{}
	for _, m := range r.Members {
		if m.Plan == "" || m.State == azure.InstanceUpgraded {
			continue
		}
		ext := ".txt"
		if strings.HasPrefix(m.Target, "hosts:") && m.State == StateReplace {
			ext = ".ps1"
		}
		name := strings.Map(func(c rune) rune {
			if c == '/' || c == '\\' || c == ':' || c < 0x20 || c == 0x7f {
				return '_'
			}
			return c
		}, m.Member)
		if name == "" || name == "." || name == ".." {
			name = "_" + name
		}
		p := filepath.Join(dir, name+ext)
		if err := atomicfile.WriteFile(p, []byte(m.Plan), 0o644); err != nil {
			return written, fmt.Errorf("script of %s: %w", m.Member, err)
		}
		written = append(written, p)
	}
	return written, nil
}
