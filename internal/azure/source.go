package azure

import "imgpipe/internal/source"

// Source is the local disk image being published (internal/source).
type Source = source.Info
