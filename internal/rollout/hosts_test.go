package rollout

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/golden"
	"imgpipe/internal/onprem"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func scriptMD(version, gen, format string) *onprem.Metadata {
	ext := map[string]string{"vhdx": "vhdx", "vhd-fixed": "vhd"}[format]
	return &onprem.Metadata{Schema: 1, Image: "web", Version: version, Generation: gen, OS: "linux",
		DiskFile: "web-" + version + "." + ext, Format: format, SHA256: strings.Repeat("cd", 32)}
}

func TestReplacementScriptGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		md     *onprem.Metadata
		oldMD  *onprem.Metadata
		name   string
		h      config.RolloutHost
	}{
		// the old VM's switch is kept (no switch in the policy); its generation is checked on the host
		{"replace-gen2-keep-switch.ps1", scriptMD("2.0.0", "V2", "vhdx"), nil, "web-07",
			config.RolloutHost{Channel: "prod", OnPrem: "lab", HostLibraryPath: `\\fs01\images`}},
		// the policy names the switch; a name with a quote stays one literal
		{"replace-gen1-switch.ps1", scriptMD("2.0.0", "V1", "vhd-fixed"), scriptMD("1.0.0", "V1", "vhd-fixed"), "o'brien-db",
			config.RolloutHost{Channel: "prod", OnPrem: "lab", Switch: "LAN", HostLibraryPath: `\\fs01\images`}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := ReplacementScript(tc.md, tc.oldMD, tc.name, "1.0.0", tc.h, 7)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.golden), got, *update)
		})
	}
}

func TestReplacementScriptRefuses(t *testing.T) {
	h := config.RolloutHost{HostLibraryPath: `\\fs01\images`}
	for _, tc := range []struct {
		name, vm, old string
		oldMD         *onprem.Metadata
		want          string
	}{
		{"generation change", "web-07", "1.0.0", scriptMD("1.0.0", "V1", "vhd-fixed"), "generation cannot change"},
		{"control characters", "web\n07", "1.0.0", nil, "control characters"},
		{"reported version not a version", "web-07", "1.0.0'; rm", nil, "not a version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReplacementScript(scriptMD("2.0.0", "V2", "vhdx"), tc.oldMD, tc.vm, tc.old, h, 1)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHostsCompleteWhenAgentsReport: the on-prem hosts of the image on an
// older version each get a replacement script; a host is done when its
// agent reports the new version, the rollout when all are.
func TestHostsCompleteWhenAgentsReport(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cat, err := catalog.Open(ctx, filepath.Join(dir, "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	lib, err := onprem.Open(filepath.Join(dir, "lib"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"1.0.0", "2.0.0"} {
		data := bytes.Repeat([]byte(v), 1<<10)
		if _, err := lib.Add(ctx, onprem.AddOptions{Image: "web", Version: v, Source: bytes.NewReader(data), Size: int64(len(data)),
			Format: "vhdx", VirtualSize: 1 << 20, Generation: "V2", OS: "linux"}); err != nil {
			t.Fatal(err)
		}
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v}); err != nil {
			t.Fatal(err)
		}
	}
	report := func(name, version, platform string) {
		t.Helper()
		if err := cat.ReportHost(ctx, catalog.Host{Name: name, Platform: platform, Image: "web", Version: version}); err != nil {
			t.Fatal(err)
		}
	}
	report("hv-a", "1.0.0", catalog.PlatformOnprem)
	report("hv-b", "1.0.0", catalog.PlatformOnprem)
	report("hv-new", "2.0.0", catalog.PlatformOnprem) // already there: not a member
	report("az-1", "1.0.0", catalog.PlatformAzure)    // not on-prem
	d := &Driver{Cat: cat}
	pol := Policy{Hosts: []config.RolloutHost{{Channel: "prod", OnPrem: "lab", Library: lib.Root(), HostLibraryPath: `\\fs01\images`}}}
	r, err := d.Start(ctx, pol, ref("2.0.0"), StartOptions{Previous: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	if r, err = d.Run(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if r.State != catalog.RolloutRunning || len(r.Members) != 2 {
		t.Fatalf("rollout %s, members %+v", r.State, r.Members)
	}
	for _, m := range r.Members {
		if m.State != StateReplace || m.Version != "1.0.0" || !strings.Contains(m.Plan, "$OldName  = '"+m.Member+"'") || !strings.Contains(m.Plan, `\\fs01\images\web\2.0.0\`) {
			t.Fatalf("member %s: %s\n%s", m.Member, m.State, m.Plan)
		}
	}
	// hv-a is replaced: its agent reports 2.0.0; hv-b not yet
	report("hv-a", "2.0.0", catalog.PlatformOnprem)
	if r, err = d.Advance(ctx, r.ID); err != nil || r.State != catalog.RolloutRunning {
		t.Fatalf("one host done: %v %s", err, r.State)
	}
	if r.Members[0].Member != "hv-a" || r.Members[0].State != "upgraded" || r.Members[1].State != StateReplace {
		t.Fatalf("members %+v", r.Members)
	}
	// a host that starts reporting now is not part of this rollout
	report("hv-late", "1.0.0", catalog.PlatformOnprem)
	report("hv-b", "2.0.0", catalog.PlatformOnprem)
	if r, err = d.Advance(ctx, r.ID); err != nil || r.State != catalog.RolloutCompleted || len(r.Members) != 2 {
		t.Fatalf("all hosts report: %v %s %+v", err, r.State, r.Members)
	}
	if r.Targets[0].Detail != "every host reports 2.0.0" {
		t.Fatalf("target %+v", r.Targets[0])
	}

	// rollback: the hosts on 2.0.0 that this rollout moved get scripts for 1.0.0
	rb, err := d.Rollback(ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rb, err = d.Advance(ctx, rb.ID); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, m := range rb.Members {
		names = append(names, m.Member)
		if !strings.Contains(m.Plan, "with web 1.0.0") {
			t.Fatalf("rollback script of %s:\n%s", m.Member, m.Plan)
		}
	}
	if strings.Join(names, ",") != "hv-a,hv-b,hv-new" {
		t.Fatalf("rollback members %v: want the hosts on 2.0.0", names)
	}
	// a new rollout to the same hosts supersedes the one still waiting
	again, err := d.Start(ctx, pol, ref("2.0.0"), StartOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if old, _ := cat.RolloutByID(ctx, rb.ID); old.State != catalog.RolloutSuperseded || !strings.Contains(old.Detail, fmt.Sprintf("rollout %d", again.ID)) {
		t.Fatalf("the earlier rollout is %s (%s)", old.State, old.Detail)
	}
	if done, _ := cat.RolloutByID(ctx, r.ID); done.State != catalog.RolloutCompleted {
		t.Fatalf("a completed rollout was touched: %s", done.State)
	}
}
