package server

import (
	"context"

	"imgpipe/internal/catalog"
)

// loopOf is the reconciler's state of an image for its page: the newest
// rebuild and, when a failed rebuild stopped the loop, why (nil: the
// reconciler never decided anything for the image).
func (s *Server) loopOf(ctx context.Context, image string) (*catalog.LoopState, error) {
	st, err := s.cfg.Catalog.Loop(ctx, image)
	if err != nil || (st.LastRebuild == nil && st.Stopped == nil) {
		return nil, err
	}
	return &st, nil
}
