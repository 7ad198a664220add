package rollout

// Scale sets. The model first: its imageReference points at the version
// (left alone when it references the definition and "latest" resolves to
// the version in the scale set's region; pinned to the version otherwise,
// and always on a rollback). Then the instances:
//   - upgradePolicy.mode Rolling: Azure's rolling upgrade (StartOSUpgrade),
//     with the policy's batch, unhealthy share and pause written into the
//     scale set's rollingUpgradePolicy; each step reads its progress.
//     Faulted (Azure stopped it: too many upgraded instances unhealthy)
//     pauses the rollout; resume starts a new rolling upgrade, which
//     leaves the instances already on the version alone.
//   - Manual (and Automatic): one batch per step through UpdateInstances,
//     the policy applied by imgpipe: the batch is the policy's share of the
//     instances, the health of every instance on the version is checked
//     after the batch (instanceView.vmHealth) and before the next one, and
//     the next batch waits for the pause.

import (
	"context"
	"fmt"
	"strings"
	"time"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
)

func (d *Driver) stepScaleSet(ctx context.Context, r catalog.Rollout, pol Policy, t *catalog.RolloutTarget, _ []catalog.RolloutMember) ([]catalog.RolloutMember, error) {
	if pol.VersionID == "" {
		return nil, fmt.Errorf("rollout %d has no gallery image version to roll scale sets to", r.ID)
	}
	c, err := d.clients(ctx, t.Target)
	if err != nil {
		return nil, err
	}
	version := r.Ref.Version
	v, err := azure.ReadScaleSet(ctx, c, t.Target, version)
	if err != nil {
		return nil, err
	}
	t.Mode = "Manual"
	if v.Mode == "Rolling" {
		t.Mode = "Rolling"
	}
	// the model
	image, note := "", ""
	switch {
	case azure.SameID(v.ModelRef, pol.VersionID):
	case !pol.Pin && azure.SameID(v.ModelRef, pol.DefinitionID):
		latest, err := azure.LatestVersion(ctx, c, pol.DefinitionID, v.Location)
		if err != nil || latest != version {
			why := "latest resolves to " + orDash(latest)
			if err != nil {
				why = "latest could not be read (" + err.Error() + ")"
			}
			image, note = pol.VersionID, fmt.Sprintf("the model referenced the definition, but %s in %s: pinned it to %s", why, v.Location, version)
		}
	default:
		image = pol.VersionID
	}
	var rp *azure.RollPolicy
	if t.Mode == "Rolling" {
		want := azure.RollPolicy{MaxBatchPercent: pol.MaxBatchPercent, MaxUnhealthyPercent: -1, Pause: pol.Pause}
		if pol.MaxUnhealthyPercent != nil {
			want.MaxUnhealthyPercent = *pol.MaxUnhealthyPercent
		}
		if (want.MaxBatchPercent > 0 && want.MaxBatchPercent != v.Policy.MaxBatchPercent) ||
			(want.MaxUnhealthyPercent >= 0 && want.MaxUnhealthyPercent != v.Policy.MaxUnhealthyPercent) ||
			(want.Pause > 0 && want.Pause != v.Policy.Pause) {
			rp = &want
		}
	}
	if image != "" || rp != nil {
		if err := azure.SetScaleSetModel(ctx, c, t.Target, image, rp, d.poll()); err != nil {
			return nil, err
		}
		if v, err = azure.ReadScaleSet(ctx, c, t.Target, version); err != nil {
			return nil, err
		}
	}
	if t.Mode == "Rolling" {
		err = d.rolling(ctx, c, v, pol, t, version)
	} else {
		err = d.manual(ctx, c, v, pol, t, version)
	}
	if note != "" && t.Batch <= 1 && t.State == catalog.RolloutRunning {
		t.Detail = note + "; " + t.Detail
	}
	return instMembers(v, t.Target), err
}

func instMembers(v *azure.ScaleSetView, target string) []catalog.RolloutMember {
	out := make([]catalog.RolloutMember, 0, len(v.Insts))
	for _, in := range v.Insts {
		out = append(out, catalog.RolloutMember{Member: v.Name + "_" + in.InstanceID, Target: target, Version: in.ExactVersion, State: in.State, Healthy: in.Healthy})
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// policy is the effective batch share, unhealthy share and pause: the
// rollout's, else the scale set's, else Azure's defaults.
func effective(pol Policy, v *azure.ScaleSetView) (batch, unhealthy int, pause time.Duration) {
	batch, unhealthy, pause = pol.MaxBatchPercent, -1, pol.Pause
	if pol.MaxUnhealthyPercent != nil {
		unhealthy = *pol.MaxUnhealthyPercent
	}
	if batch <= 0 {
		batch = v.Policy.MaxBatchPercent
	}
	if batch <= 0 {
		batch = 20
	}
	if unhealthy < 0 {
		unhealthy = v.Policy.MaxUnhealthyPercent
	}
	if unhealthy < 0 {
		unhealthy = 20
	}
	if pause <= 0 {
		pause = v.Policy.Pause
	}
	return batch, unhealthy, pause
}

func ids(insts []azure.RolloutInstance, keep func(azure.RolloutInstance) bool) []string {
	var out []string
	for _, in := range insts {
		if keep(in) {
			out = append(out, in.InstanceID)
		}
	}
	return out
}

func (d *Driver) rolling(ctx context.Context, c *azure.Clients, v *azure.ScaleSetView, pol Policy, t *catalog.RolloutTarget, version string) error {
	batchPct, _, _ := effective(pol, v)
	size := max(1, len(v.Insts)*batchPct/100)
	notOn := ids(v.Insts, func(in azure.RolloutInstance) bool { return in.ExactVersion != version || !in.LatestModel })
	if t.UpgradeAt.IsZero() {
		if len(notOn) == 0 {
			t.State, t.Detail = catalog.RolloutCompleted, fmt.Sprintf("every instance runs %s", version)
			return nil
		}
		if u := v.Upgrade; u == nil || u.Code != "RollingForward" {
			if err := azure.StartRollingUpgrade(ctx, c, t.Target); err != nil {
				return err
			}
			nv, err := azure.ReadScaleSet(ctx, c, t.Target, version)
			if err != nil {
				return err
			}
			*v = *nv
		}
		if v.Upgrade == nil {
			return fmt.Errorf("scale set %s: no rolling upgrade after starting one", v.Name)
		}
		// Azure may have started it on the model update: followed either way
		t.UpgradeAt = v.Upgrade.Started
	}
	u := v.Upgrade
	if u == nil {
		return fmt.Errorf("scale set %s: its rolling upgrade is gone", v.Name)
	}
	done := u.Successful + u.Failed
	t.Batch = (done + size - 1) / size
	unhealthy := ids(v.Insts, func(in azure.RolloutInstance) bool { return in.State == azure.InstanceUnhealthy })
	switch u.Code {
	case "RollingForward":
		t.Detail = fmt.Sprintf("rolling upgrade: %d upgraded, %d unhealthy, %d upgrading, %d pending", u.Successful, u.Failed, u.InProgress, u.Pending)
	case "Completed":
		if len(notOn) > 0 {
			t.State = catalog.RolloutFailed
			t.Detail = fmt.Sprintf("the rolling upgrade completed but instances %s do not run %s: when the model references the definition, latest must resolve to %s (is it excluded from latest, or not replicated to %s?)",
				strings.Join(notOn, ", "), version, version, v.Location)
			return nil
		}
		t.State, t.Detail = catalog.RolloutCompleted, fmt.Sprintf("every instance runs %s (rolling upgrade, %d batches)", version, t.Batch)
	case "Faulted", "RollingBack":
		t.State = catalog.RolloutPaused
		t.Detail = fmt.Sprintf("scale set %s: batch %d unhealthy: %d upgraded instance(s) unhealthy on %s (%s), %d not upgraded; Azure stopped the rolling upgrade (%s). Fix the version and resume, or roll back",
			v.Name, t.Batch, len(unhealthy), version, strings.Join(unhealthy, ", "), len(notOn)-len(unhealthy), orDash(u.Error))
	case "Cancelled":
		t.State = catalog.RolloutPaused
		t.Detail = fmt.Sprintf("scale set %s: the rolling upgrade was cancelled (not by this rollout) with %d of %d instances on %s; resume to start it again",
			v.Name, len(v.Insts)-len(notOn), len(v.Insts), version)
	default:
		return fmt.Errorf("scale set %s: rolling upgrade in state %q", v.Name, u.Code)
	}
	return nil
}

func (d *Driver) manual(ctx context.Context, c *azure.Clients, v *azure.ScaleSetView, pol Policy, t *catalog.RolloutTarget, version string) error {
	batchPct, maxBad, pause := effective(pol, v)
	total := len(v.Insts)
	health := func() bool {
		on := ids(v.Insts, func(in azure.RolloutInstance) bool { return in.ExactVersion == version })
		bad := ids(v.Insts, func(in azure.RolloutInstance) bool { return in.State == azure.InstanceUnhealthy })
		if len(bad)*100 > maxBad*len(on) {
			t.State = catalog.RolloutPaused
			t.Detail = fmt.Sprintf("scale set %s: batch %d unhealthy: %d of %d upgraded instance(s) unhealthy on %s (%s), more than max_unhealthy_percent %d%%; %d instance(s) left on their version. Fix the version and resume, or roll back",
				v.Name, t.Batch, len(bad), len(on), version, strings.Join(bad, ", "), maxBad, total-len(on))
			return false
		}
		return true
	}
	if !health() {
		return nil
	}
	todo := ids(v.Insts, func(in azure.RolloutInstance) bool { return in.ExactVersion != version || !in.LatestModel })
	if len(todo) == 0 {
		t.State, t.Detail, t.NextAt = catalog.RolloutCompleted, fmt.Sprintf("every instance runs %s (%d batches)", version, t.Batch), time.Time{}
		return nil
	}
	if d.now().Before(t.NextAt) {
		return nil // the pause between batches
	}
	size := max(1, total*batchPct/100)
	batch := todo[:min(size, len(todo))]
	if err := azure.UpgradeInstances(ctx, c, t.Target, batch, d.poll()); err != nil {
		return err
	}
	t.Batch++
	nv, err := azure.ReadScaleSet(ctx, c, t.Target, version)
	if err != nil {
		return err
	}
	*v = *nv
	var wrong []string
	for _, in := range v.Insts {
		for _, b := range batch {
			if in.InstanceID == b && in.ExactVersion != version {
				wrong = append(wrong, in.InstanceID+" ("+orDash(in.ExactVersion)+")")
			}
		}
	}
	if len(wrong) > 0 {
		t.State = catalog.RolloutFailed
		t.Detail = fmt.Sprintf("scale set %s: instances %s do not run %s after their upgrade: the model does not resolve to %s", v.Name, strings.Join(wrong, ", "), version, version)
		return nil
	}
	if !health() {
		return nil
	}
	left := len(todo) - len(batch)
	if left == 0 {
		t.State, t.Detail, t.NextAt = catalog.RolloutCompleted, fmt.Sprintf("every instance runs %s (%d batches)", version, t.Batch), time.Time{}
		return nil
	}
	t.NextAt = d.now().Add(pause)
	t.Detail = fmt.Sprintf("batch %d: %d instance(s) upgraded to %s, %d to go; next batch after %s", t.Batch, len(batch), version, left, t.NextAt.UTC().Format(time.RFC3339))
	return nil
}
