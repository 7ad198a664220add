package azure

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
)

// TestRolloutSteps: the step operations internal/rollout drives, against
// azemu through the SDK (the rollouts themselves are tested there).
func TestRolloutSteps(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{LRODelay: 100 * time.Millisecond, RetryAfter: 50 * time.Millisecond, ReplicationDuration: 100 * time.Millisecond})
	f := azemutest.NewFleet(t, env, "steps", "1.0.0", "2.0.0", "3.0.0")
	c, err := NewClients(env.SubscriptionID, env.Credential(), env.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	if v, err := LatestVersion(ctx, c, f.DefID, "West Europe"); err != nil || v != "3.0.0" {
		t.Fatalf("latest in westeurope: %q %v", v, err)
	}
	if v, err := LatestVersion(ctx, c, f.DefID, "eastus"); err != nil || v != "" {
		t.Fatalf("latest where no version is replicated: %q %v", v, err)
	}
	if _, err := LatestVersion(ctx, c, f.VersionID("1.0.0"), "westeurope"); err == nil || !strings.Contains(err.Error(), "not a gallery image definition") {
		t.Fatalf("latest of a version id: %v", err)
	}

	ss := f.ScaleSet(t, "web", f.VersionID("1.0.0"), 3, armcompute.UpgradeModeManual, nil)
	v, err := ReadScaleSet(ctx, c, ss, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if v.Mode != "Manual" || v.Upgrade != nil || len(v.Insts) != 3 || v.Insts[0].State != InstancePending || v.Policy.MaxUnhealthyPercent != -1 || v.Policy.MaxBatchPercent != 0 {
		t.Fatalf("scale set %+v", v)
	}
	pol := &RollPolicy{MaxBatchPercent: 50, MaxUnhealthyPercent: 0, Pause: 1500 * time.Millisecond}
	if err := SetScaleSetModel(ctx, c, ss, f.VersionID("2.0.0"), pol, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := UpgradeInstances(ctx, c, ss, []string{"0", "2"}, 50*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	v, err = ReadScaleSet(ctx, c, ss, "2.0.0")
	if err != nil {
		t.Fatal(err)
	}
	if v.Policy != *pol || !SameID(v.ModelRef, f.VersionID("2.0.0")) {
		t.Fatalf("model and policy after the update: %s %+v", v.ModelRef, v.Policy)
	}
	states := []string{v.Insts[0].State, v.Insts[1].State, v.Insts[2].State}
	if strings.Join(states, ",") != "upgraded,pending,upgraded" || !v.Insts[0].LatestModel || v.Insts[1].LatestModel {
		t.Fatalf("instances after upgrading 0 and 2: %+v", v.Insts)
	}

	vm := f.VM(t, "db1", f.VersionID("1.0.0"))
	vms, err := ReadVMs(ctx, c, []string{vm, strings.Replace(vm, "db1", "gone", 1)})
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != 1 || vms[strings.ToLower(vm)].ExactVersion != "1.0.0" || vms[strings.ToLower(vm)].Location != "westeurope" {
		t.Fatalf("VMs %+v", vms)
	}

	for _, tc := range []struct {
		name string
		err  func() error
		want string
	}{
		{"not a scale set", func() error { _, err := ReadScaleSet(ctx, c, "/subscriptions/x/nope", ""); return err }, "not a scale set id"},
		{"other subscription", func() error {
			_, err := ReadScaleSet(ctx, c, "/subscriptions/other/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web", "")
			return err
		}, "connect to that subscription"},
		{"missing scale set", func() error { _, err := ReadScaleSet(ctx, c, strings.Replace(ss, "/web", "/nope", 1), ""); return err }, "read scale set nope"},
		{"not a VM", func() error { _, err := ReadVMs(ctx, c, []string{ss}); return err }, "not a VM id"},
	} {
		if err := tc.err(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestISO8601(t *testing.T) {
	for _, d := range []time.Duration{0, 1500 * time.Millisecond, 30 * time.Second, 90 * time.Minute} {
		got, err := parseISO8601(formatISO8601(d))
		if err != nil || got != d {
			t.Errorf("%v -> %s -> %v %v", d, formatISO8601(d), got, err)
		}
	}
	if d, err := parseISO8601("PT1H2M3S"); err != nil || d != time.Hour+2*time.Minute+3*time.Second {
		t.Errorf("PT1H2M3S: %v %v", d, err)
	}
	for _, bad := range []string{"PT", "30s", "P1D"} {
		if _, err := parseISO8601(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
