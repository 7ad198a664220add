package buildinfo

import (
	"runtime/debug"
	"testing"
)

func TestFrom(t *testing.T) {
	for _, tc := range []struct {
		bi   *debug.BuildInfo
		want Info
		tool string
	}{
		{nil, Info{}, "dev"},
		{&debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "(devel)"}}, Info{Go: "go1.26"}, "dev"},
		{&debug.BuildInfo{GoVersion: "go1.26", Main: debug.Module{Version: "v1.2.0"}, Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}},
			Info{Version: "v1.2.0", Revision: "abc123", Go: "go1.26"}, "v1.2.0+abc123"},
		{&debug.BuildInfo{Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abc123"}}}, Info{Revision: "abc123"}, "dev+abc123"},
	} {
		got := from(tc.bi)
		if got != tc.want || got.Tool() != tc.tool {
			t.Errorf("from(%+v) = %+v (tool %q), want %+v (tool %q)", tc.bi, got, got.Tool(), tc.want, tc.tool)
		}
	}
	if Read().Go == "" {
		t.Error("the test binary's build information names no Go version")
	}
}
