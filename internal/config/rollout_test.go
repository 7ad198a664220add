package config

import (
	"strings"
	"testing"
	"time"
)

const rolloutBase = testsBase + `
onprem "lab" {
  library = "/srv/images"
}
`

func TestRolloutBlock(t *testing.T) {
	f, err := Parse([]byte(rolloutBase+`
rollout {
  max_batch_percent     = 25
  max_unhealthy_percent = 0
  pause                 = "30s"
  scale_sets = ["/subscriptions/s1/resourceGroups/prod/providers/Microsoft.Compute/virtualMachineScaleSets/web/"]
  vms        = ["/subscriptions/s2/resourceGroups/prod/providers/Microsoft.Compute/virtualMachines/db1"]
  hosts {
    channel = "test"
    switch  = "LAN"
    host_library_path = "\\\\files\\images"
  }
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ro := f.Rollout("web")
	if ro == nil {
		t.Fatal("no rollout policy for web")
	}
	if ro.MaxBatchPercent != 25 || ro.MaxUnhealthyPercent != 0 || ro.Pause != 30*time.Second {
		t.Fatalf("rollout %+v", ro)
	}
	if len(ro.ScaleSets) != 1 || strings.HasSuffix(ro.ScaleSets[0], "/") || len(ro.VMs) != 1 {
		t.Fatalf("targets %q %q", ro.ScaleSets, ro.VMs)
	}
	if len(ro.Hosts) != 1 {
		t.Fatalf("hosts %+v", ro.Hosts)
	}
	h := ro.Hosts[0]
	if h.Channel != "test" || h.OnPrem != "lab" || h.Library != "/srv/images" || h.Switch != "LAN" || h.HostLibraryPath != `\\files\images` {
		t.Fatalf("hosts %+v", h)
	}
}

func TestRolloutDefaults(t *testing.T) {
	f, err := Parse([]byte(rolloutBase+`
rollout {
  hosts {
  }
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ro := f.Rollout("web")
	if ro.MaxBatchPercent != 20 || ro.MaxUnhealthyPercent != 20 || ro.Pause != 0 {
		t.Fatalf("defaults %+v", ro)
	}
	if h := ro.Hosts[0]; h.Channel != "prod" || h.OnPrem != "lab" || h.HostLibraryPath != "/srv/images" {
		t.Fatalf("host defaults %+v", h)
	}
	if f.Rollout("other") != nil {
		t.Fatal("a policy for an undeclared image")
	}
}

func TestRolloutErrors(t *testing.T) {
	for _, tc := range []struct{ name, block, want string }{
		{"no target", "rollout {\n}", "rollout has no target"},
		{"batch too small", "rollout {\n max_batch_percent = 2\n hosts {\n}\n}", "use 5 to 100"},
		{"unhealthy over 100", "rollout {\n max_unhealthy_percent = 101\n hosts {\n}\n}", "max_unhealthy_percent"},
		{"bad pause", "rollout {\n pause = \"soon\"\n hosts {\n}\n}", "invalid pause"},
		{"bad scale set", `rollout { scale_sets = ["/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/virtualMachines/x"] }`, "invalid scale set id"},
		{"bad vm", `rollout { vms = ["web"] }`, "invalid VM id"},
		{"unknown image", "rollout {\n image = \"db\"\n hosts {\n}\n}", "unknown image"},
		{"unknown onprem", "rollout {\n hosts { onprem = \"nope\" }\n}", "unknown onprem block"},
		{"bad channel", "rollout {\n hosts { channel = \"a b\" }\n}", "invalid channel"},
		{"control chars", "rollout {\n hosts { switch = \"a\\tb\" }\n}", "control characters"},
		{"twice", "rollout {\n hosts {\n}\n}\nrollout {\n hosts {\n}\n}", "duplicate rollout block"},
		{"variables", "rollout {\n pause = var.p\n hosts {\n}\n}", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(rolloutBase+tc.block+"\n"), "p.hcl")
			if err == nil {
				t.Fatal("accepted")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
	// hosts without any onprem block for the image
	_, err := Parse([]byte(testsBase+"rollout {\n hosts {\n}\n}\n"), "p.hcl")
	if err == nil || !strings.Contains(err.Error(), "no onprem block publishes image") {
		t.Fatalf("hosts without a library: %v", err)
	}
}
