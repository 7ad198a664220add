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
//     ("manualupgrade") per batch; imgpipe applies the same policy itself:
//     batch size from maxBatchInstancePercent (default 20%), after each batch
//     the health of the upgraded instances (instanceView.vmHealth) against
//     maxUnhealthyUpgradedInstancePercent (default 20%), pauseTimeBetweenBatches
//     between batches.
//   - per instance: VirtualMachineScaleSetVMs List with $expand=instanceView
//     gives storageProfile.imageReference.exactVersion, latestModelApplied
//     and vmHealth.

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
)

// ErrRolloutUnhealthy is returned (wrapped) when a batch's instances fail
// their health check and the rollout stops.
var ErrRolloutUnhealthy = errors.New("rollout stopped: upgraded instances are unhealthy")

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

// RolloutProgress is reported after every poll that changed something.
type RolloutProgress struct {
	ScaleSet string `json:"scale_set"`
	Version  string `json:"version"` // target version name
	// Status is RollingForward, Completed, Faulted or Cancelled.
	Status     string            `json:"status"`
	Batch      int               `json:"batch"` // batches completed (counted by imgpipe)
	Successful int               `json:"successful"`
	Failed     int               `json:"failed"`
	InProgress int               `json:"in_progress"`
	Pending    int               `json:"pending"`
	Instances  []RolloutInstance `json:"instances"`
}

// ScaleSetRollout says what to roll where.
type ScaleSetRollout struct {
	// ScaleSetID is the scale set's resource id (in Clients.Subscription).
	ScaleSetID string
	// VersionID is the gallery image version to roll to. When the model
	// references the version's definition ("latest"), the model is left alone
	// and the rollout checks that latest resolves to this version.
	VersionID string
	// PollInterval between progress reads (default 5s).
	PollInterval time.Duration
}

// RolloutResult is how a rollout ended.
type RolloutResult struct {
	ScaleSet     string            `json:"scale_set"`
	Version      string            `json:"version"`
	Mode         string            `json:"mode"` // Rolling or Manual
	ModelUpdated bool              `json:"model_updated"`
	Status       string            `json:"status"`
	Instances    []RolloutInstance `json:"instances"`
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

// RollScaleSet rolls a scale set to a gallery image version and returns when
// every instance runs it (nil error), or when the rollout stopped: a batch
// unhealthy (ErrRolloutUnhealthy), the upgrade cancelled, ctx done. report,
// when not nil, receives progress after each change.
func RollScaleSet(ctx context.Context, c *Clients, r ScaleSetRollout, report func(RolloutProgress)) (*RolloutResult, error) {
	if c.ScaleSets == nil || c.ScaleSetVMs == nil || c.RollingUpgrades == nil {
		return nil, errors.New("rollout: the scale set clients are not configured")
	}
	sub, rg, name, err := parseScaleSetID(r.ScaleSetID)
	if err != nil {
		return nil, err
	}
	if !strings.EqualFold(sub, c.Subscription) {
		return nil, fmt.Errorf("scale set %s is in subscription %s, but the clients are for %s: connect to that subscription", name, sub, c.Subscription)
	}
	ver, err := ParseResourceID(r.VersionID)
	if err != nil {
		return nil, err
	}
	if ver.Kind() != "version" {
		return nil, fmt.Errorf("%s is not a gallery image version id", r.VersionID)
	}
	if r.PollInterval <= 0 {
		r.PollInterval = 5 * time.Second
	}
	got, err := c.ScaleSets.Get(ctx, rg, name, nil)
	if err != nil {
		return nil, fmt.Errorf("read scale set %s: %w", name, err)
	}
	ss := got.VirtualMachineScaleSet
	res := &RolloutResult{ScaleSet: r.ScaleSetID, Version: ver.Version, Mode: "Manual"}
	var model string
	if p := ss.Properties; p != nil && p.VirtualMachineProfile != nil && p.VirtualMachineProfile.StorageProfile != nil &&
		p.VirtualMachineProfile.StorageProfile.ImageReference != nil && p.VirtualMachineProfile.StorageProfile.ImageReference.ID != nil {
		model = *p.VirtualMachineProfile.StorageProfile.ImageReference.ID
	}
	var pol *armcompute.RollingUpgradePolicy
	if p := ss.Properties; p != nil && p.UpgradePolicy != nil {
		if p.UpgradePolicy.Mode != nil && *p.UpgradePolicy.Mode == armcompute.UpgradeModeRolling {
			res.Mode = "Rolling"
		}
		pol = p.UpgradePolicy.RollingUpgradePolicy
	}
	since := time.Now().Add(-time.Second)
	if !SameID(model, ver.DefinitionID()) && !SameID(model, r.VersionID) {
		up, err := c.ScaleSets.BeginUpdate(ctx, rg, name, armcompute.VirtualMachineScaleSetUpdate{
			Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{
				StorageProfile: &armcompute.VirtualMachineScaleSetUpdateStorageProfile{ImageReference: &armcompute.ImageReference{ID: to.Ptr(r.VersionID)}},
			}},
		}, nil)
		if err == nil {
			_, err = up.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: max(r.PollInterval, time.Second)})
		}
		if err != nil {
			return nil, fmt.Errorf("update the model of scale set %s to %s: %w", name, ver.Version, err)
		}
		res.ModelUpdated = true
	}
	ro := &roller{c: c, rg: rg, name: name, target: ver.Version, r: r, report: report}
	if res.Mode == "Rolling" {
		err = ro.rolling(ctx, since)
	} else {
		err = ro.manual(ctx, pol)
	}
	res.Status, res.Instances = ro.last.Status, ro.last.Instances
	if err != nil {
		return res, err
	}
	for _, in := range res.Instances {
		if in.ExactVersion != ver.Version {
			return res, fmt.Errorf("scale set %s: instance %s runs %s after the upgrade, not %s; when the model references the definition, latest must resolve to %s (is it excluded from latest, or not replicated to the scale set's region?)",
				name, in.InstanceID, in.ExactVersion, ver.Version, ver.Version)
		}
	}
	return res, nil
}

type roller struct {
	c      *Clients
	rg     string
	name   string
	target string
	r      ScaleSetRollout
	report func(RolloutProgress)
	last   RolloutProgress
	sent   string // fingerprint of the last progress reported
}

// instances lists the instances with their version and health.
func (ro *roller) instances(ctx context.Context, upgrading []string) ([]RolloutInstance, error) {
	var out []RolloutInstance
	pg := ro.c.ScaleSetVMs.NewListPager(ro.rg, ro.name, &armcompute.VirtualMachineScaleSetVMsClientListOptions{Expand: to.Ptr("instanceView")})
	for pg.More() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the instances of scale set %s: %w", ro.name, err)
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
			case in.ExactVersion == ro.target && in.Healthy:
				in.State = InstanceUpgraded
			case in.ExactVersion == ro.target:
				in.State = InstanceUnhealthy
			case slices.Contains(upgrading, in.InstanceID):
				in.State = InstanceUpgrading
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

func (ro *roller) emit(p RolloutProgress) {
	p.ScaleSet, p.Version = ro.r.ScaleSetID, ro.target
	ro.last = p
	fp := fmt.Sprintf("%s %d %d %d %d %d %v", p.Status, p.Batch, p.Successful, p.Failed, p.InProgress, p.Pending, p.Instances)
	if ro.report != nil && fp != ro.sent {
		ro.report(p)
	}
	ro.sent = fp
}

func (ro *roller) sleep(ctx context.Context) error {
	t := time.NewTimer(ro.r.PollInterval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("rollout of scale set %s interrupted: %w", ro.name, ctx.Err())
	case <-t.C:
		return nil
	}
}

// rolling follows Azure's rolling upgrade (started here unless Azure
// started one on the model update).
func (ro *roller) rolling(ctx context.Context, since time.Time) error {
	running := false
	if cur, err := ro.c.RollingUpgrades.GetLatest(ctx, ro.rg, ro.name, nil); err == nil {
		if p := cur.Properties; p != nil && p.RunningStatus != nil && p.RunningStatus.Code != nil &&
			*p.RunningStatus.Code == armcompute.RollingUpgradeStatusCodeRollingForward &&
			p.RunningStatus.StartTime != nil && !p.RunningStatus.StartTime.Before(since) {
			running = true
		}
	}
	if !running {
		if _, err := ro.c.RollingUpgrades.BeginStartOSUpgrade(ctx, ro.rg, ro.name, nil); err != nil {
			return fmt.Errorf("start the rolling upgrade of scale set %s: %w", ro.name, err)
		}
	}
	batches, lastDone := 0, -1
	for {
		st, err := ro.c.RollingUpgrades.GetLatest(ctx, ro.rg, ro.name, nil)
		if err != nil {
			return fmt.Errorf("read the rolling upgrade of scale set %s: %w", ro.name, err)
		}
		p := st.Properties
		if p == nil || p.RunningStatus == nil || p.RunningStatus.Code == nil || p.Progress == nil {
			return fmt.Errorf("scale set %s: the rolling upgrade status has no runningStatus or progress", ro.name)
		}
		pr := RolloutProgress{Status: string(*p.RunningStatus.Code),
			Successful: int(deref32(p.Progress.SuccessfulInstanceCount)), Failed: int(deref32(p.Progress.FailedInstanceCount)),
			InProgress: int(deref32(p.Progress.InProgressInstanceCount)), Pending: int(deref32(p.Progress.PendingInstanceCount))}
		if done := pr.Successful + pr.Failed; done != lastDone {
			if lastDone >= 0 && done > lastDone {
				batches++
			}
			lastDone = done
		}
		pr.Batch = batches
		insts, err := ro.instances(ctx, nil)
		if err != nil {
			return err
		}
		// Azure does not say which instances are in the batch being
		// upgraded: they stay "pending" here; InProgress counts them.
		pr.Instances = insts
		ro.emit(pr)
		switch *p.RunningStatus.Code {
		case armcompute.RollingUpgradeStatusCodeCompleted:
			return nil
		case armcompute.RollingUpgradeStatusCodeFaulted:
			msg := ""
			if p.Error != nil {
				msg = fmt.Sprintf(" (%s: %s)", to2(p.Error.Code), to2(p.Error.Message))
			}
			return fmt.Errorf("scale set %s: %w: %d upgraded instance(s) unhealthy on %s (%s), %d not upgraded; Azure stopped the upgrade%s. Fix or revoke the version; the instances left on the old version keep serving",
				ro.name, ErrRolloutUnhealthy, pr.Failed, ro.target, strings.Join(ids(insts, InstanceUnhealthy), ", "), pr.Pending, msg)
		case armcompute.RollingUpgradeStatusCodeCancelled:
			return fmt.Errorf("scale set %s: the rolling upgrade was cancelled with %d of %d instances upgraded", ro.name, pr.Successful, len(insts))
		case armcompute.RollingUpgradeStatusCodeRollingBack:
			return fmt.Errorf("scale set %s: Azure is rolling the upgrade back (rollbackFailedInstancesOnPolicyBreach): %w", ro.name, ErrRolloutUnhealthy)
		}
		if err := ro.sleep(ctx); err != nil {
			return err
		}
	}
}

func ids(insts []RolloutInstance, state string) []string {
	var out []string
	for _, in := range insts {
		if in.State == state {
			out = append(out, in.InstanceID)
		}
	}
	return out
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

// manual rolls batch by batch through UpdateInstances, applying the
// scale set's rolling policy (or its defaults) itself.
func (ro *roller) manual(ctx context.Context, pol *armcompute.RollingUpgradePolicy) error {
	if pol == nil {
		pol = &armcompute.RollingUpgradePolicy{}
	}
	maxBatch, maxBadUpgraded := policyInt(pol.MaxBatchInstancePercent, 20), policyInt(pol.MaxUnhealthyUpgradedInstancePercent, 20)
	var pause time.Duration
	if pol.PauseTimeBetweenBatches != nil {
		d, err := parseISO8601(*pol.PauseTimeBetweenBatches)
		if err != nil {
			return err
		}
		pause = d
	}
	insts, err := ro.instances(ctx, nil)
	if err != nil {
		return err
	}
	var todo []string
	for _, in := range insts {
		if in.ExactVersion != ro.target || !in.LatestModel {
			todo = append(todo, in.InstanceID)
		}
	}
	size := max(1, len(insts)*maxBatch/100)
	batch, upgraded := 0, 0
	for len(todo) > 0 {
		b := todo[:min(size, len(todo))]
		todo = todo[len(b):]
		ro.emit(ro.count(insts, b, batch, "RollingForward"))
		p, err := ro.c.ScaleSets.BeginUpdateInstances(ctx, ro.rg, ro.name, armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{InstanceIDs: to.SliceOfPtrs(b...)}, nil)
		if err == nil {
			_, err = p.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: max(ro.r.PollInterval, time.Second)})
		}
		if err != nil {
			return fmt.Errorf("upgrade instances %s of scale set %s: %w", strings.Join(b, ", "), ro.name, err)
		}
		batch++
		upgraded += len(b)
		if insts, err = ro.instances(ctx, nil); err != nil {
			return err
		}
		bad := ids(insts, InstanceUnhealthy)
		if len(bad)*100 > maxBadUpgraded*upgraded {
			ro.emit(ro.count(insts, nil, batch, "Faulted"))
			return fmt.Errorf("scale set %s: %w: %d of %d upgraded instance(s) unhealthy on %s (%s), more than maxUnhealthyUpgradedInstancePercent %d%%; %d instance(s) left on the old version",
				ro.name, ErrRolloutUnhealthy, len(bad), upgraded, ro.target, strings.Join(bad, ", "), maxBadUpgraded, len(todo))
		}
		if len(todo) == 0 {
			break
		}
		ro.emit(ro.count(insts, nil, batch, "RollingForward"))
		if pause > 0 {
			t := time.NewTimer(pause)
			select {
			case <-ctx.Done():
				t.Stop()
				return fmt.Errorf("rollout of scale set %s interrupted: %w", ro.name, ctx.Err())
			case <-t.C:
			}
		}
	}
	if insts, err = ro.instances(ctx, nil); err != nil {
		return err
	}
	ro.emit(ro.count(insts, nil, batch, "Completed"))
	return nil
}

// count builds the progress of a manual rollout from the instance list.
func (ro *roller) count(insts []RolloutInstance, upgrading []string, batch int, status string) RolloutProgress {
	pr := RolloutProgress{Status: status, Batch: batch}
	for i := range insts {
		in := &insts[i]
		if in.State == InstancePending && slices.Contains(upgrading, in.InstanceID) {
			in.State = InstanceUpgrading
		}
		switch in.State {
		case InstanceUpgraded:
			pr.Successful++
		case InstanceUnhealthy:
			pr.Failed++
		case InstanceUpgrading:
			pr.InProgress++
		default:
			pr.Pending++
		}
	}
	pr.Instances = slices.Clone(insts)
	return pr
}
