package rollout

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

func TestPolicyFor(t *testing.T) {
	dir := t.TempDir()
	src := `
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
onprem "lab" {
  library = "lib"
}
rollout {
  max_batch_percent = 25
  pause             = "10s"
  scale_sets = ["/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"]
}
`
	f, err := config.Parse([]byte(src), filepath.Join(dir, "p.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := PolicyFor(f, "web", Targets{})
	if err != nil || p.MaxBatchPercent != 25 || p.Pause != 10*time.Second || len(p.ScaleSets) != 1 || p.MaxUnhealthyPercent == nil || *p.MaxUnhealthyPercent != 20 {
		t.Fatalf("from the file: %+v %v", p, err)
	}
	// targets on the command line replace the file's; overrides apply
	fifty, d := 50, time.Minute
	p, err = PolicyFor(f, "web", Targets{VMs: []string{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/a"}, HostsChannel: "test", MaxBatchPercent: &fifty, Pause: &d})
	if err != nil || len(p.ScaleSets) != 0 || len(p.VMs) != 1 || len(p.Hosts) != 1 || p.Hosts[0].Library != filepath.Join(dir, "lib") || p.Hosts[0].Channel != "test" || p.MaxBatchPercent != 50 || p.Pause != d || p.MaxUnhealthyPercent != nil {
		t.Fatalf("from flags: %+v %v", p, err)
	}
	for _, tc := range []struct {
		file  *config.File
		image string
		t     Targets
		want  string
	}{
		{f, "db", Targets{}, "no rollout block for image db"},
		{nil, "web", Targets{HostsChannel: "prod"}, "need the pipeline file"},
		{f, "web", Targets{ScaleSets: []string{"x"}, MaxBatchPercent: new(int)}, "use 5 to 100"},
	} {
		if _, err := PolicyFor(tc.file, tc.image, tc.t); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want %q", tc.t, err, tc.want)
		}
	}
}

func TestWriteScripts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "out")
	r := catalog.Rollout{ID: 3, Members: []catalog.RolloutMember{
		{Member: "hv-a", Target: "hosts:prod@lab", State: StateReplace, Plan: "# script a\n"},
		{Member: "hv-b", Target: "hosts:prod@lab", State: "upgraded", Plan: "# done\n"},
		{Member: "../hv-c", Target: "hosts:prod@lab", State: StateBlocked, Plan: "cannot replace: generation\n"},
		{Member: "db1", Target: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachines/db1", State: StateReplace, Plan: "VM db1 ...\n"},
		{Member: "web_0", Target: "/subscriptions/s/.../virtualMachineScaleSets/web", State: "pending"},
	}}
	got, err := WriteScripts(r, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"hv-a.ps1", ".._hv-c.txt", "db1.txt"}
	if len(got) != len(want) {
		t.Fatalf("wrote %v, want %v", got, want)
	}
	for i, w := range want {
		if got[i] != filepath.Join(dir, w) {
			t.Fatalf("file %d: %s, want %s", i, got[i], w)
		}
	}
	if b, err := os.ReadFile(got[0]); err != nil || string(b) != "# script a\n" {
		t.Fatalf("%s: %q %v", got[0], b, err)
	}
}
