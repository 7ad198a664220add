package azemu_test

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/azemu"
)

// scaleSetBody is a scale set of n instances on imageID, upgrade mode as given.
func scaleSetBody(loc, imageID string, n int64, mode armcompute.UpgradeMode, pol *armcompute.RollingUpgradePolicy) armcompute.VirtualMachineScaleSet {
	return armcompute.VirtualMachineScaleSet{
		Location: to.Ptr(loc),
		SKU:      &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr(n)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(mode), RollingUpgradePolicy: pol},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
			},
		},
	}
}

type instState struct {
	exact   string
	latest  bool
	healthy bool
}

func listInstances(t *testing.T, c *armcompute.VirtualMachineScaleSetVMsClient, rg, ss string) map[string]instState {
	t.Helper()
	out := map[string]instState{}
	pg := c.NewListPager(rg, ss, &armcompute.VirtualMachineScaleSetVMsClientListOptions{Expand: to.Ptr("instanceView")})
	for pg.More() {
		page, err := pg.NextPage(context.Background())
		if err != nil {
			t.Fatalf("list instances: %v", err)
		}
		for _, vm := range page.Value {
			st := instState{latest: *vm.Properties.LatestModelApplied}
			if ir := vm.Properties.StorageProfile.ImageReference; ir != nil && ir.ExactVersion != nil {
				st.exact = *ir.ExactVersion
			}
			st.healthy = *vm.Properties.InstanceView.VMHealth.Status.Code == "HealthState/healthy"
			out[*vm.InstanceID] = st
		}
	}
	return out
}

func countOn(m map[string]instState, v string) int {
	n := 0
	for _, st := range m {
		if st.exact == v {
			n++
		}
	}
	return n
}

// TestScaleSetRollingUpgrade checks the emulated scale-set rollout rules of
// vmss_rollout.go through the SDK.
func TestScaleSetRollingUpgrade(t *testing.T) {
	s := newSuite(t)
	s.emuOnly(t, "a real scale set needs a network profile and health probe")
	ctx := s.ctx
	cf, err := armcompute.NewClientFactory(s.sub, s.cred, s.opts)
	if err != nil {
		t.Fatal(err)
	}
	vmsC, upC := cf.NewVirtualMachineScaleSetVMsClient(), cf.NewVirtualMachineScaleSetRollingUpgradesClient()
	rg := s.rg(t)
	s.gallery(t, rg, "g")
	s.definition(t, rg, "g", "d", "V1")
	img := s.image(t, rg, "img", s.upload(t, s.name("x")+".vhd", []byte("rollout")), "V1")
	v1 := s.version(t, rg, "g", "d", "1.0.0", *img.ID)
	v2 := s.version(t, rg, "g", "d", "2.0.0", *img.ID)
	v3 := s.version(t, rg, "g", "d", "3.0.0", *img.ID)
	defID := "/subscriptions/" + s.sub + "/resourceGroups/" + rg + "/providers/Microsoft.Compute/galleries/g/images/d"

	createSS := func(t *testing.T, name, imageID string, n int64, mode armcompute.UpgradeMode, pol *armcompute.RollingUpgradePolicy) {
		t.Helper()
		p, err := s.vmss.BeginCreateOrUpdate(ctx, rg, name, scaleSetBody(s.loc, imageID, n, mode, pol), nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
	}
	setModel := func(t *testing.T, name, imageID string) {
		t.Helper()
		p, err := s.vmss.BeginUpdate(ctx, rg, name, armcompute.VirtualMachineScaleSetUpdate{
			Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetUpdateStorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
			}},
		}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
	}
	half := &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](50), MaxUnhealthyInstancePercent: to.Ptr[int32](50), PauseTimeBetweenBatches: to.Ptr("PT1S")}

	t.Run("BatchesMoveExactVersion", func(t *testing.T) {
		createSS(t, "ss", *v1.ID, 4, armcompute.UpgradeModeRolling, half)
		insts := listInstances(t, vmsC, rg, "ss")
		if len(insts) != 4 || countOn(insts, "1.0.0") != 4 {
			t.Fatalf("instances after create: %+v, want 4 on 1.0.0", insts)
		}
		if _, err := upC.GetLatest(ctx, rg, "ss", nil); err == nil {
			t.Fatal("GetLatest before any upgrade succeeded")
		}
		setModel(t, "ss", *v2.ID)
		insts = listInstances(t, vmsC, rg, "ss")
		if countOn(insts, "1.0.0") != 4 || insts["0"].latest {
			t.Fatalf("a model update alone changed instances: %+v", insts)
		}
		p, err := upC.BeginStartOSUpgrade(ctx, rg, "ss", nil)
		if err != nil {
			t.Fatal(err)
		}
		// a second start while rolling forward is refused
		_, err = upC.BeginStartOSUpgrade(ctx, rg, "ss", nil)
		wantCode(t, err, http.StatusConflict, "RollingUpgradeInProgress")
		seen := map[int]bool{} // instances on 2.0.0 observed while rolling
		var last armcompute.RollingUpgradeStatusInfo
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			r, err := upC.GetLatest(ctx, rg, "ss", nil)
			if err != nil {
				t.Fatal(err)
			}
			last = r.RollingUpgradeStatusInfo
			pr := last.Properties.Progress
			on2 := countOn(listInstances(t, vmsC, rg, "ss"), "2.0.0")
			if on2 != int(*pr.SuccessfulInstanceCount) && *last.Properties.RunningStatus.Code != armcompute.RollingUpgradeStatusCodeCompleted {
				// progress and instances are read in two requests; a batch may end between them
				if on2 < int(*pr.SuccessfulInstanceCount) {
					t.Fatalf("%d instances on 2.0.0 but %d reported successful", on2, *pr.SuccessfulInstanceCount)
				}
			}
			seen[on2] = true
			if sum := *pr.SuccessfulInstanceCount + *pr.FailedInstanceCount + *pr.InProgressInstanceCount + *pr.PendingInstanceCount; sum != 4 {
				t.Fatalf("progress counts sum to %d, want 4: %+v", sum, *pr)
			}
			if *last.Properties.RunningStatus.Code != armcompute.RollingUpgradeStatusCodeRollingForward {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if *last.Properties.RunningStatus.Code != armcompute.RollingUpgradeStatusCodeCompleted || *last.Properties.Progress.SuccessfulInstanceCount != 4 {
			t.Fatalf("upgrade ended %s with %+v", *last.Properties.RunningStatus.Code, *last.Properties.Progress)
		}
		if !seen[2] {
			t.Fatalf("never saw the half-way state (2 of 4 on 2.0.0) with maxBatchInstancePercent 50: %v", seen)
		}
		if *last.Properties.Policy.MaxBatchInstancePercent != 50 || *last.Properties.Policy.MaxUnhealthyUpgradedInstancePercent != 20 {
			t.Fatalf("policy with defaults: %+v", *last.Properties.Policy)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatalf("StartOSUpgrade operation: %v", err)
		}
		for id, st := range listInstances(t, vmsC, rg, "ss") {
			if st.exact != "2.0.0" || !st.latest || !st.healthy {
				t.Fatalf("instance %s after the upgrade: %+v", id, st)
			}
		}
	})

	t.Run("UnhealthyBatchFaults", func(t *testing.T) {
		s.env.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0"}})
		defer s.env.Server.SetFaults(azemu.Faults{})
		createSS(t, "bad", *v2.ID, 4, armcompute.UpgradeModeRolling, half)
		setModel(t, "bad", *v3.ID)
		p, err := upC.BeginStartOSUpgrade(ctx, rg, "bad", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.PollUntilDone(ctx, pollFast)
		var re *azcore.ResponseError
		if !errors.As(err, &re) || re.ErrorCode != "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade" {
			t.Fatalf("StartOSUpgrade on an unhealthy version: %v", err)
		}
		r, err := upC.GetLatest(ctx, rg, "bad", nil)
		if err != nil {
			t.Fatal(err)
		}
		pr := r.Properties.Progress
		if *r.Properties.RunningStatus.Code != armcompute.RollingUpgradeStatusCodeFaulted || *pr.FailedInstanceCount != 2 || *pr.PendingInstanceCount != 2 || *pr.SuccessfulInstanceCount != 0 {
			t.Fatalf("after a bad batch: %s %+v", *r.Properties.RunningStatus.Code, *pr)
		}
		if r.Properties.Error == nil || *r.Properties.Error.Code == "" {
			t.Fatal("Faulted upgrade without error")
		}
		insts := listInstances(t, vmsC, rg, "bad")
		if countOn(insts, "3.0.0") != 2 || countOn(insts, "2.0.0") != 2 {
			t.Fatalf("the upgrade went past the bad batch: %+v", insts)
		}
		for id, st := range insts {
			if st.healthy == (st.exact == "3.0.0") {
				t.Fatalf("instance %s health %+v", id, st)
			}
		}
		// the next start sees 2 of 4 unhealthy: above maxUnhealthyInstancePercent 20
		createSS(t, "bad", *v3.ID, 4, armcompute.UpgradeModeRolling, &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](20)})
		s.env.Server.SetFaults(azemu.Faults{UnhealthyVersions: []string{"3.0.0", "2.0.0"}})
		setModel(t, "bad", *v1.ID)
		p, err = upC.BeginStartOSUpgrade(ctx, rg, "bad", nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = p.PollUntilDone(ctx, pollFast)
		if !errors.As(err, &re) || re.ErrorCode != "MaxUnhealthyInstancePercentExceededInRollingUpgrade" {
			t.Fatalf("start with most instances unhealthy: %v", err)
		}
	})

	t.Run("Cancel", func(t *testing.T) {
		createSS(t, "can", *v1.ID, 4, armcompute.UpgradeModeRolling, &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](20), MaxUnhealthyInstancePercent: to.Ptr[int32](20), PauseTimeBetweenBatches: to.Ptr("PT10S")})
		setModel(t, "can", *v2.ID)
		if _, err := upC.BeginStartOSUpgrade(ctx, rg, "can", nil); err != nil {
			t.Fatal(err)
		}
		cp, err := upC.BeginCancel(ctx, rg, "can", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := cp.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		r, err := upC.GetLatest(ctx, rg, "can", nil)
		if err != nil || *r.Properties.RunningStatus.Code != armcompute.RollingUpgradeStatusCodeCancelled || *r.Properties.RunningStatus.LastAction != armcompute.RollingUpgradeActionTypeCancel {
			t.Fatalf("after cancel: %v %+v", err, r.Properties)
		}
		time.Sleep(3 * time.Second) // past the first batch's end: a cancelled upgrade applies no more batches
		if n := countOn(listInstances(t, vmsC, rg, "can"), "2.0.0"); n != 0 {
			t.Fatalf("%d instances upgraded after cancel", n)
		}
		_, err = upC.BeginCancel(ctx, rg, "can", nil)
		wantCode(t, err, http.StatusConflict, "OperationNotAllowed")
	})

	t.Run("LatestFromDefinition", func(t *testing.T) {
		createSS(t, "lat", *v1.ID, 3, armcompute.UpgradeModeRolling, &armcompute.RollingUpgradePolicy{MaxBatchInstancePercent: to.Ptr[int32](100), MaxUnhealthyInstancePercent: to.Ptr[int32](100)})
		// a version excluded from latest is not what the definition resolves to
		b := versionBody(s.loc, *img.ID)
		b.Properties.PublishingProfile.ExcludeFromLatest = to.Ptr(true)
		vp, err := s.versions.BeginCreateOrUpdate(ctx, rg, "g", "d", "4.0.0", b, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := vp.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		setModel(t, "lat", defID)
		p, err := upC.BeginStartOSUpgrade(ctx, rg, "lat", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		insts := listInstances(t, vmsC, rg, "lat")
		if countOn(insts, "3.0.0") != 3 {
			t.Fatalf("latest should be 3.0.0 (4.0.0 is excluded): %+v", insts)
		}
	})

	t.Run("ManualModeUpdateInstances", func(t *testing.T) {
		createSS(t, "man", *v1.ID, 3, armcompute.UpgradeModeManual, nil)
		setModel(t, "man", *v2.ID)
		_, err := upC.BeginStartOSUpgrade(ctx, rg, "man", nil)
		wantCode(t, err, http.StatusConflict, "OperationNotAllowed")
		p, err := s.vmss.BeginUpdateInstances(ctx, rg, "man", armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{InstanceIDs: []*string{to.Ptr("1")}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.PollUntilDone(ctx, pollFast); err != nil {
			t.Fatal(err)
		}
		insts := listInstances(t, vmsC, rg, "man")
		var on2 []string
		for id, st := range insts {
			if st.exact == "2.0.0" {
				on2 = append(on2, id)
				if !st.latest {
					t.Fatalf("instance %s on the model but latestModelApplied false", id)
				}
			}
		}
		sort.Strings(on2)
		if len(on2) != 1 || on2[0] != "1" {
			t.Fatalf("UpdateInstances [1] moved %v", on2)
		}
		_, err = s.vmss.BeginUpdateInstances(ctx, rg, "man", armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{InstanceIDs: []*string{to.Ptr("9")}}, nil)
		wantCode(t, err, http.StatusNotFound, "NotFound")
		// instance view and scale-in
		iv, err := vmsC.GetInstanceView(ctx, rg, "man", "1", nil)
		if err != nil || *iv.VMHealth.Status.Code != "HealthState/healthy" {
			t.Fatalf("instance view: %v %+v", err, iv)
		}
		createSS(t, "man", *v2.ID, 2, armcompute.UpgradeModeManual, nil)
		if n := len(listInstances(t, vmsC, rg, "man")); n != 2 {
			t.Fatalf("%d instances after scale-in to 2", n)
		}
	})

	// A standalone VM's image cannot change in place (Azure: 409
	// PropertyChangeNotAllowed, target imageReference.id; vms.go cites the
	// sources): imgpipe rollout replaces VMs. The same image again is accepted.
	t.Run("VMImageImmutable", func(t *testing.T) {
		if err := s.createVM(ctx, s.vms, rg, "vm", s.loc, *v1.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.createVM(ctx, s.vms, rg, "vm", s.loc, *v1.ID); err != nil {
			t.Fatalf("the same image again: %v", err)
		}
		_, err := s.vms.BeginCreateOrUpdate(ctx, rg, "vm", s.vm(rg, "vm", s.loc, *v2.ID), nil)
		wantCode(t, err, http.StatusConflict, "PropertyChangeNotAllowed")
		if !strings.Contains(err.Error(), "imageReference.id") {
			t.Fatalf("the error does not name imageReference.id: %v", err)
		}
		vm, err := s.vms.Get(ctx, rg, "vm", nil)
		if err != nil || *vm.Properties.StorageProfile.ImageReference.ExactVersion != "1.0.0" {
			t.Fatalf("the refused update changed the VM: %v", err)
		}
	})
}
