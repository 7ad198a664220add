package azure

// Rollout steps: the operations internal/rollout drives one at a time, so a
// rollout can be paused, resumed and rolled back between any two of them.
//
// Sources, besides those in rollout.go:
//   - Cancel: VirtualMachineScaleSetRollingUpgrades_Cancel (POST
//     .../rollingUpgrades/cancel, REST spec virtualMachineScaleSet.json):
//     "Cancels the current virtual machine scale set rolling upgrade."
//     Instances already upgraded stay upgraded; StartOSUpgrade later only
//     touches those not on the latest model.
//   - Model update: VirtualMachineScaleSets_Update (PATCH) with
//     virtualMachineProfile.storageProfile.imageReference and
//     upgradePolicy.rollingUpgradePolicy (the update model has both).
//   - Standalone VMs: VirtualMachines_ListAll; a VM's
//     storageProfile.imageReference cannot be changed by an update (Azure
//     answers PropertyChangeNotAllowed: "Changing property 'imageReference'
//     is not allowed"), so a VM is replaced, never upgraded in place.

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

// RollPolicy is a rolling policy: the share of instances upgraded in one
// batch, the share of upgraded instances that may be unhealthy, the pause
// between batches. MaxBatchPercent 0 and MaxUnhealthyPercent -1 are unset
// (Azure's default is 20% for both).
type RollPolicy struct {
	MaxBatchPercent     int           `json:"max_batch_percent"`
	MaxUnhealthyPercent int           `json:"max_unhealthy_percent"`
	Pause               time.Duration `json:"pause"`
}

// UpgradeStatus is a scale set's latest rolling upgrade.
type UpgradeStatus struct {
	// Code is RollingForward, Completed, Faulted, Cancelled or RollingBack.
	Code       string    `json:"code"`
	Started    time.Time `json:"started"`
	Successful int       `json:"successful"`
	Failed     int       `json:"failed"`
	InProgress int       `json:"in_progress"`
	Pending    int       `json:"pending"`
	Error      string    `json:"error,omitempty"`
}

// ScaleSetView is a scale set as a rollout step sees it, its instances
// classified against the version being rolled out.
type ScaleSetView struct {
	ID       string            `json:"id"`
	Name     string            `json:"name"`
	Location string            `json:"location"`
	Mode     string            `json:"mode"`      // Rolling, Manual or Automatic
	ModelRef string            `json:"model_ref"` // the model's imageReference.id
	Policy   RollPolicy        `json:"policy"`    // the scale set's own rollingUpgradePolicy
	Upgrade  *UpgradeStatus    `json:"upgrade,omitempty"`
	Insts    []RolloutInstance `json:"instances"`
}

// ReadScaleSet reads a scale set, its instances (state against target, a
// version name such as 1.4.0) and its latest rolling upgrade.
func ReadScaleSet(ctx context.Context, c *Clients, id, target string) (*ScaleSetView, error) {
	rg, name, err := c.scaleSetName(id)
	if err != nil {
		return nil, err
	}
	got, err := c.ScaleSets.Get(ctx, rg, name, nil)
	if err != nil {
		return nil, fmt.Errorf("read scale set %s: %w", name, err)
	}
	ss := got.VirtualMachineScaleSet
	v := &ScaleSetView{ID: id, Name: name, Location: config.NormalizeLocation(deref(ss.Location)), Mode: "Manual", Policy: RollPolicy{MaxUnhealthyPercent: -1}}
	if p := ss.Properties; p != nil {
		if p.VirtualMachineProfile != nil && p.VirtualMachineProfile.StorageProfile != nil && p.VirtualMachineProfile.StorageProfile.ImageReference != nil {
			v.ModelRef = deref(p.VirtualMachineProfile.StorageProfile.ImageReference.ID)
		}
		if up := p.UpgradePolicy; up != nil {
			if up.Mode != nil {
				v.Mode = string(*up.Mode)
			}
			if rp := up.RollingUpgradePolicy; rp != nil {
				v.Policy.MaxBatchPercent = policyInt(rp.MaxBatchInstancePercent, 0)
				v.Policy.MaxUnhealthyPercent = policyInt(rp.MaxUnhealthyUpgradedInstancePercent, -1)
				if rp.PauseTimeBetweenBatches != nil {
					if v.Policy.Pause, err = parseISO8601(*rp.PauseTimeBetweenBatches); err != nil {
						return nil, fmt.Errorf("scale set %s: %w", name, err)
					}
				}
			}
		}
	}
	// the rolling upgrade's status before the instances: read the other
	// way round, an upgrade that completed between the two reads showed
	// "Completed" beside instances still on their old version, and the
	// rollout failed a scale set that had rolled (seen under load)
	st, err := c.RollingUpgrades.GetLatest(ctx, rg, name, nil)
	switch {
	case isNotFound(err):
	case err != nil:
		return nil, fmt.Errorf("read the rolling upgrade of scale set %s: %w", name, err)
	default:
		if p := st.Properties; p != nil && p.RunningStatus != nil && p.RunningStatus.Code != nil {
			u := &UpgradeStatus{Code: string(*p.RunningStatus.Code)}
			if p.RunningStatus.StartTime != nil {
				u.Started = *p.RunningStatus.StartTime
			}
			if pr := p.Progress; pr != nil {
				u.Successful, u.Failed = int(deref32(pr.SuccessfulInstanceCount)), int(deref32(pr.FailedInstanceCount))
				u.InProgress, u.Pending = int(deref32(pr.InProgressInstanceCount)), int(deref32(pr.PendingInstanceCount))
			}
			if p.Error != nil {
				u.Error = strings.TrimSpace(to2(p.Error.Code) + ": " + to2(p.Error.Message))
			}
			v.Upgrade = u
		}
	}
	if v.Insts, err = listInstances(ctx, c, rg, name, target); err != nil {
		return nil, err
	}
	return v, nil
}

func (c *Clients) scaleSetName(id string) (rg, name string, err error) {
	if c.ScaleSets == nil || c.ScaleSetVMs == nil || c.RollingUpgrades == nil {
		return "", "", errors.New("rollout: the scale set clients are not configured")
	}
	sub, rg, name, err := parseScaleSetID(id)
	if err != nil {
		return "", "", err
	}
	if !strings.EqualFold(sub, c.Subscription) {
		return "", "", fmt.Errorf("scale set %s is in subscription %s, but the clients are for %s: connect to that subscription", name, sub, c.Subscription)
	}
	return rg, name, nil
}

// SetScaleSetModel points the scale set's model at imageID (a gallery
// version or definition id; "" leaves it) and, when pol is not nil, sets
// the parts of its rollingUpgradePolicy that pol gives (MaxBatchPercent 0,
// MaxUnhealthyPercent below 0 and Pause 0 leave theirs); it waits for the update.
func SetScaleSetModel(ctx context.Context, c *Clients, id, imageID string, pol *RollPolicy, poll time.Duration) error {
	rg, name, err := c.scaleSetName(id)
	if err != nil {
		return err
	}
	upd := armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{}}
	if imageID != "" {
		upd.Properties.VirtualMachineProfile = &armcompute.VirtualMachineScaleSetUpdateVMProfile{
			StorageProfile: &armcompute.VirtualMachineScaleSetUpdateStorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(imageID)}},
		}
	}
	if pol != nil {
		rp := &armcompute.RollingUpgradePolicy{}
		if pol.MaxBatchPercent > 0 {
			rp.MaxBatchInstancePercent = to.Ptr(int32(pol.MaxBatchPercent))
		}
		if pol.MaxUnhealthyPercent >= 0 {
			rp.MaxUnhealthyUpgradedInstancePercent = to.Ptr(int32(pol.MaxUnhealthyPercent))
		}
		if pol.Pause > 0 {
			rp.PauseTimeBetweenBatches = to.Ptr(formatISO8601(pol.Pause))
		}
		upd.Properties.UpgradePolicy = &armcompute.UpgradePolicy{RollingUpgradePolicy: rp}
	}
	what := "the model"
	if imageID != "" {
		what += " to " + imageID
	}
	p, err := c.ScaleSets.BeginUpdate(ctx, rg, name, upd, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: max(poll, 100*time.Millisecond)})
	}
	if err != nil {
		return fmt.Errorf("update %s of scale set %s: %w", what, name, err)
	}
	return nil
}

// UpgradeInstances brings the named instances to the scale set's model
// (UpdateInstances, "manualupgrade") and waits for it.
func UpgradeInstances(ctx context.Context, c *Clients, id string, instanceIDs []string, poll time.Duration) error {
	rg, name, err := c.scaleSetName(id)
	if err != nil {
		return err
	}
	p, err := c.ScaleSets.BeginUpdateInstances(ctx, rg, name, armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{InstanceIDs: to.SliceOfPtrs(instanceIDs...)}, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: max(poll, 100*time.Millisecond)})
	}
	if err != nil {
		return fmt.Errorf("upgrade instances %s of scale set %s: %w", strings.Join(instanceIDs, ", "), name, err)
	}
	return nil
}

// StartRollingUpgrade starts Azure's rolling upgrade of the scale set
// (StartOSUpgrade) and returns without waiting for it; ReadScaleSet follows it.
func StartRollingUpgrade(ctx context.Context, c *Clients, id string) error {
	rg, name, err := c.scaleSetName(id)
	if err != nil {
		return err
	}
	if _, err := c.RollingUpgrades.BeginStartOSUpgrade(ctx, rg, name, nil); err != nil {
		return fmt.Errorf("start the rolling upgrade of scale set %s: %w", name, err)
	}
	return nil
}

// CancelRollingUpgrade cancels the scale set's rolling upgrade in progress
// and waits for the cancel. The instances already upgraded stay upgraded.
func CancelRollingUpgrade(ctx context.Context, c *Clients, id string, poll time.Duration) error {
	rg, name, err := c.scaleSetName(id)
	if err != nil {
		return err
	}
	p, err := c.RollingUpgrades.BeginCancel(ctx, rg, name, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: max(poll, 100*time.Millisecond)})
	}
	if err != nil {
		return fmt.Errorf("cancel the rolling upgrade of scale set %s: %w", name, err)
	}
	return nil
}

// LatestVersion is the version a gallery definition id resolves to in
// region ("latest"): the highest version not excluded from latest with the
// region among its target regions; "" when none. The definition must be in
// the clients' subscription.
func LatestVersion(ctx context.Context, c *Clients, definitionID, region string) (string, error) {
	def, err := ParseResourceID(definitionID)
	if err != nil {
		return "", err
	}
	if def.Kind() != "definition" {
		return "", fmt.Errorf("%s is not a gallery image definition id", definitionID)
	}
	region = config.NormalizeLocation(region)
	best := ""
	pg := c.Versions.NewListByGalleryImagePager(def.ResourceGroup, def.Gallery, def.Definition, nil)
	for pg.More() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return "", fmt.Errorf("list the versions of %s: %w", def.Definition, err)
		}
		for _, v := range page.Value {
			if v == nil || v.Name == nil || v.Properties == nil || v.Properties.PublishingProfile == nil {
				continue
			}
			pp := v.Properties.PublishingProfile
			if pp.ExcludeFromLatest != nil && *pp.ExcludeFromLatest {
				continue
			}
			if !slices.ContainsFunc(pp.TargetRegions, func(r *armcompute.TargetRegion) bool {
				return r != nil && config.NormalizeLocation(deref(r.Name)) == region
			}) {
				continue
			}
			if best == "" || versionLess(best, *v.Name) {
				best = *v.Name
			}
		}
	}
	return best, nil
}

func versionLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	for i := range min(len(pa), len(pb)) {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return len(pa) < len(pb)
}

// VMView is a standalone VM and the image it was made from.
type VMView struct {
	ID           string `json:"id"`
	Name         string `json:"name"`
	Location     string `json:"location"`
	ImageRef     string `json:"image_ref"`
	ExactVersion string `json:"exact_version"`
	Size         string `json:"size,omitempty"`
}

var vmIDRE = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachines/([^/?#]+)$`)

// ReadVMs finds the standalone VMs ids (in the clients' subscription);
// a VM that does not exist is missing from the answer.
func ReadVMs(ctx context.Context, c *Clients, ids []string) (map[string]VMView, error) {
	if c.VMs == nil {
		return nil, errors.New("rollout: the virtual machines client is not configured")
	}
	want := map[string]bool{}
	for _, id := range ids {
		m := vmIDRE.FindStringSubmatch(strings.TrimRight(id, "/"))
		if m == nil {
			return nil, fmt.Errorf("%q is not a VM id; expected /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachines/NAME", id)
		}
		if !strings.EqualFold(m[1], c.Subscription) {
			return nil, fmt.Errorf("VM %s is in subscription %s, but the clients are for %s: connect to that subscription", m[3], m[1], c.Subscription)
		}
		want[strings.ToLower(strings.TrimRight(id, "/"))] = true
	}
	out := map[string]VMView{}
	pg := c.VMs.NewListAllPager(nil)
	for pg.More() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the VMs of subscription %s: %w", c.Subscription, err)
		}
		for _, vm := range page.Value {
			if vm == nil || vm.ID == nil || !want[strings.ToLower(*vm.ID)] {
				continue
			}
			v := VMView{ID: *vm.ID, Name: deref(vm.Name), Location: config.NormalizeLocation(deref(vm.Location))}
			if p := vm.Properties; p != nil {
				if p.StorageProfile != nil && p.StorageProfile.ImageReference != nil {
					v.ImageRef = deref(p.StorageProfile.ImageReference.ID)
					v.ExactVersion = deref(p.StorageProfile.ImageReference.ExactVersion)
				}
				if p.HardwareProfile != nil && p.HardwareProfile.VMSize != nil {
					v.Size = string(*p.HardwareProfile.VMSize)
				}
			}
			out[strings.ToLower(v.ID)] = v
		}
	}
	return out, nil
}

// formatISO8601 writes d as the PT#S form pauseTimeBetweenBatches takes.
func formatISO8601(d time.Duration) string {
	return "PT" + strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S"
}
