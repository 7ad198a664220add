package pipeline

// What a publish reads and writes besides the destinations: the source disk
// (inspected once) and saved plans.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/config"
	"imgpipe/internal/source"
)

// InspectSource inspects, in one read, the disk a publish of img uses: from
// (--source), else the image block's source, else Packer's artifact once
// built. With no disk yet it returns nil when planWithout (an Azure
// destination can plan a build not run yet), else an error saying to build.
func InspectSource(ctx context.Context, img *config.Image, from string, planWithout bool) (*source.Info, error) {
	src := cmp.Or(from, img.Source)
	if src == "" && img.Packer != nil && img.Packer.Artifact != "" {
		if _, err := os.Stat(img.Packer.Artifact); err == nil || !planWithout {
			src = img.Packer.Artifact
		}
	}
	if src == "" {
		if !planWithout {
			return nil, fmt.Errorf("image %q has no disk yet: run imgpipe build first, or pass --source DISK", img.Name)
		}
		return nil, nil // built by Packer, not built yet: plan only
	}
	return source.Inspect(ctx, src)
}

// FileSHA256 is the hex SHA-256 of a (small) file: the pipeline file a
// saved plan was made from.
func FileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// SavePlanFile writes plan, made from the pipeline file at file, to out
// (whole or not at all).
func SavePlanFile(plan *Plan, file, out string, now time.Time) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	sum, err := FileSHA256(file)
	if err != nil {
		return err
	}
	saved, err := plan.Save(abs, sum, now)
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	return nil
}

// ReadSavedFile reads a plan SavePlanFile wrote.
func ReadSavedFile(path string) (*Saved, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the saved plan: %w", err)
	}
	defer f.Close()
	return ReadSaved(f)
}
