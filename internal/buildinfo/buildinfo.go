// Package buildinfo says which imgpipe build is running: its module
// version, the VCS revision it was built from and the Go version, read once
// from the binary's build information.
package buildinfo

import (
	"runtime/debug"
	"sync"
)

// Info is the running build.
type Info struct {
	// Version is the module version, "" for a development build.
	Version string `json:"version,omitempty"`
	// Revision is the VCS revision, "" when the build did not record it.
	Revision string `json:"revision,omitempty"`
	// Go is the Go version it was built with.
	Go string `json:"go,omitempty"`
}

var read = sync.OnceValue(func() Info { bi, _ := debug.ReadBuildInfo(); return from(bi) })

// Read returns the running build's information.
func Read() Info { return read() }

// from reads bi (nil: nothing known).
func from(bi *debug.BuildInfo) Info {
	var in Info
	if bi == nil {
		return in
	}
	in.Go = bi.GoVersion
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		in.Version = v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			in.Revision = s.Value
		}
	}
	return in
}

// Tool names the build in documents it writes (provenance, SBOMs):
// VERSION+REVISION, with "dev" for the version of a development build.
func (in Info) Tool() string {
	v := in.Version
	if v == "" {
		v = "dev"
	}
	if in.Revision != "" {
		return v + "+" + in.Revision
	}
	return v
}
