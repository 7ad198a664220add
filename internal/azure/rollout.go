package azure

// Rolling a scale set to a promoted gallery image version.
//
// Azure's operations (REST spec virtualMachineScaleSet.json, through the SDK):
//   - the model: VirtualMachineScaleSets Update (PATCH) of
//     virtualMachineProfile.storageProfile.imageReference.id — a version id pins
//     it; a definition id means "latest" (the newest version not excluded from
//     latest), so promotion alone moves it.
//   - upgradePolicy.mode Rolling: VirtualMachineScaleSetRollingUpgrades
//     StartOSUpgrade, then GetLatest for runningStatus.code (RollingForward,
//     Completed, Faulted, Cancelled) and the progress counts. Azure rolls in
//     batches of maxBatchInstancePercent and aborts when more than
//     maxUnhealthyUpgradedInstancePercent of the upgraded instances are
//     unhealthy (RollingUpgradePolicy). With mode Rolling Azure may already have
//     started the upgrade on the model update: then it is followed, not started.
//   - mode Manual (and Automatic): VirtualMachineScaleSets UpdateInstances
//     ("manualupgrade") per batch; internal/rollout applies the same policy itself:
//     batch size from maxBatchInstancePercent (default 20%), after each batch
//     the health of the upgraded instances (instanceView.vmHealth) against
//     maxUnhealthyUpgradedInstancePercent (default 20%), pauseTimeBetweenBatches
//     between batches.
//   - per instance: VirtualMachineScaleSetVMs List with $expand=instanceView
//     gives storageProfile.imageReference.exactVersion, latestModelApplied
//     and vmHealth.

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
)

// Instance states reported during a rollout.
const (
	InstancePending   = "pending"   // not yet on the target version
	InstanceUpgrading = "upgrading" // in the batch being upgraded
	InstanceUpgraded  = "upgraded"  // on the target version and healthy
	InstanceUnhealthy = "unhealthy" // on the target version, failing health
)

// RolloutInstance is one scale-set instance as the rollout sees it.
type RolloutInstance struct {
	InstanceID   string `json:"instance_id"`
	ExactVersion string `json:"exact_version"`
	LatestModel  bool   `json:"latest_model_applied"`
	Healthy      bool   `json:"healthy"`
	State        string `json:"state"`
}

var scaleSetIDRE = regexp.MustCompile(`(?i)^/subscriptions/([^/]+)/resourceGroups/([^/]+)/providers/Microsoft\.Compute/virtualMachineScaleSets/([^/?#]+)$`)

// parseScaleSetID returns the subscription, resource group and name.
func parseScaleSetID(id string) (sub, rg, name string, err error) {
	m := scaleSetIDRE.FindStringSubmatch(strings.TrimRight(id, "/"))
	if m == nil {
		return "", "", "", fmt.Errorf("%q is not a scale set id; expected /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/NAME", id)
	}
	return m[1], m[2], m[3], nil
}

// listInstances lists a scale set's instances with their version and
// health, their state against target (a version name).
func listInstances(ctx context.Context, c *Clients, rg, name, target string) ([]RolloutInstance, error) {
	var out []RolloutInstance
	pg := c.ScaleSetVMs.NewListPager(rg, name, &armcompute.VirtualMachineScaleSetVMsClientListOptions{Expand: to.Ptr("instanceView")})
	for pg.More() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the instances of scale set %s: %w", name, err)
		}
		for _, vm := range page.Value {
			in := RolloutInstance{InstanceID: to2(vm.InstanceID), Healthy: true}
			if p := vm.Properties; p != nil {
				if p.LatestModelApplied != nil {
					in.LatestModel = *p.LatestModelApplied
				}
				if p.StorageProfile != nil && p.StorageProfile.ImageReference != nil {
					in.ExactVersion = to2(p.StorageProfile.ImageReference.ExactVersion)
				}
				if iv := p.InstanceView; iv != nil && iv.VMHealth != nil && iv.VMHealth.Status != nil {
					in.Healthy = !strings.EqualFold(to2(iv.VMHealth.Status.Code), "HealthState/unhealthy")
				}
			}
			switch {
			case in.ExactVersion == target && in.Healthy:
				in.State = InstanceUpgraded
			case in.ExactVersion == target:
				in.State = InstanceUnhealthy
			default:
				in.State = InstancePending
			}
			out = append(out, in)
		}
	}
	slices.SortFunc(out, func(a, b RolloutInstance) int {
		x, _ := strconv.Atoi(a.InstanceID)
		y, _ := strconv.Atoi(b.InstanceID)
		return x - y
	})
	return out, nil
}

func to2(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func deref32(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func policyInt(p *int32, def int) int {
	if p == nil {
		return def
	}
	return int(*p)
}

// parseISO8601 reads the PT#H#M#S durations of pauseTimeBetweenBatches.
func parseISO8601(v string) (time.Duration, error) {
	m := regexp.MustCompile(`^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$`).FindStringSubmatch(v)
	if m == nil || v == "PT" {
		return 0, fmt.Errorf("pauseTimeBetweenBatches %q is not an ISO 8601 duration such as PT30S", v)
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			f, _ := strconv.ParseFloat(m[i+1], 64)
			d += time.Duration(f * float64(unit))
		}
	}
	return d, nil
}
