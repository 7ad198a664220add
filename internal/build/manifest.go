package build

import (
	"encoding/json"
	"fmt"
)

// Manifest is the file written by Packer's manifest post-processor. Packer
// appends one entry per build and run; LastRunUUID names the newest run.
type Manifest struct {
	Builds      []ManifestBuild `json:"builds"`
	LastRunUUID string          `json:"last_run_uuid"`
}

// ManifestBuild is one build in the manifest.
type ManifestBuild struct {
	Name          string            `json:"name"`
	BuilderType   string            `json:"builder_type"`
	BuildTime     int64             `json:"build_time"`
	Files         []ManifestFile    `json:"files"`
	ArtifactID    string            `json:"artifact_id"`
	PackerRunUUID string            `json:"packer_run_uuid"`
	CustomData    map[string]string `json:"custom_data"`
}

// ManifestFile is one artifact file; Name is as Packer saw it (relative to
// Packer's working directory unless the template made it absolute).
type ManifestFile struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

// maxManifest bounds the manifest size read into memory.
const maxManifest = 64 << 20

// ParseManifest parses a manifest file's content.
func ParseManifest(b []byte) (*Manifest, error) {
	if len(b) > maxManifest {
		return nil, fmt.Errorf("manifest is %d bytes, more than the %d accepted: point the manifest post-processor at a fresh file", len(b), maxManifest)
	}
	var m Manifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse Packer manifest: %w", err)
	}
	return &m, nil
}

// LastRun returns the builds of the newest run (all builds when the
// manifest names no run).
func (m *Manifest) LastRun() []ManifestBuild {
	if m.LastRunUUID == "" {
		return m.Builds
	}
	var out []ManifestBuild
	for _, b := range m.Builds {
		if b.PackerRunUUID == m.LastRunUUID {
			out = append(out, b)
		}
	}
	return out
}
