package pipeline

import (
	"context"
	"strings"
	"testing"

	"imgpipe/internal/build"
)

// TestVerbRequestsRefuseBadFlags: onprem add and build refuse their bad
// flag values before they touch a library or run Packer.
func TestVerbRequestsRefuseBadFlags(t *testing.T) {
	ctx := context.Background()
	if _, err := AddLibraryDisk(ctx, nil, LibraryAddRequest{Library: t.TempDir(), Format: "qcow2"}); err == nil || !strings.Contains(err.Error(), `--format "qcow2": use vhdx or keep`) {
		t.Errorf("--format qcow2: %v", err)
	}
	if _, err := AddLibraryDisk(ctx, nil, LibraryAddRequest{Format: "vhdx"}); err == nil || !strings.Contains(err.Error(), "--library DIR") {
		t.Errorf("no library: %v", err)
	}
	noPacker := build.Options{Template: t.TempDir(), Packer: "/nonexistent/packer"}
	for _, r := range []BuildRequest{
		{Options: noPacker, VarArgs: []string{"version"}},
		{Options: noPacker, VarArgs: []string{"=1"}},
	} {
		if _, err := Build(ctx, r); err == nil || !strings.Contains(err.Error(), "use --var name=value") {
			t.Errorf("Build(%q): %v", r.VarArgs, err)
		}
	}
	g := noPacker
	g.Generation = "V3"
	if _, err := Build(ctx, BuildRequest{Options: g}); err == nil || !strings.Contains(err.Error(), `--generation "V3": use V1 or V2`) {
		t.Errorf("--generation V3: %v", err)
	}
}
