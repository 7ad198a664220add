package pipeline

// The test gate's side of the engine: staging in Azure (a gallery version
// is included in latest only once promoted to prod; internal/promote).

import (
	"context"
	"fmt"
)

// SetExcludeFromLatest sets a gallery version's excludeFromLatest in its
// subscription: Fleet is internal/promote's Stager.
func (f *Fleet) SetExcludeFromLatest(ctx context.Context, versionID string, exclude bool) error {
	p, err := f.publisherFor(versionID)
	if err != nil {
		return fmt.Errorf("stage %s: %w", versionID, err)
	}
	return p.SetExcludeFromLatest(ctx, versionID, exclude)
}
