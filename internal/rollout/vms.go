package rollout

// Standalone Azure VMs. A VM's storageProfile.imageReference cannot be
// changed by an update (VirtualMachines_Update answers
// PropertyChangeNotAllowed; the OS disk can only be swapped for a disk the
// caller made), so a VM is replaced: the rollout lists it with the plan to
// replace it and the check-deploy verdict for the version in the VM's
// subscription and region, and the VM is done when a VM of that id runs
// the version (the replacement reuses the name).

import (
	"context"
	"fmt"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
)

func (d *Driver) stepVM(ctx context.Context, r catalog.Rollout, pol Policy, t *catalog.RolloutTarget, _ []catalog.RolloutMember) ([]catalog.RolloutMember, error) {
	if pol.VersionID == "" {
		return nil, fmt.Errorf("rollout %d has no gallery image version to replace VMs with", r.ID)
	}
	c, err := d.clients(ctx, t.Target)
	if err != nil {
		return nil, err
	}
	vms, err := azure.ReadVMs(ctx, c, []string{t.Target})
	if err != nil {
		return nil, err
	}
	version := r.Ref.Version
	name := t.Target[strings.LastIndex(t.Target, "/")+1:]
	m := catalog.RolloutMember{Member: name, Target: t.Target, Healthy: true}
	vm, ok := vms[strings.ToLower(t.Target)]
	switch {
	case !ok:
		m.State = StateMissing
		t.Detail = fmt.Sprintf("VM %s does not exist (being replaced?); done when a VM of this id runs %s", name, version)
		return []catalog.RolloutMember{m}, nil
	case vm.ExactVersion == version:
		m.Version, m.State = vm.ExactVersion, azure.InstanceUpgraded
		t.State, t.Detail = catalog.RolloutCompleted, fmt.Sprintf("VM %s runs %s", name, version)
		return []catalog.RolloutMember{m}, nil
	}
	m.Version = vm.ExactVersion
	ver, err := azure.ParseResourceID(pol.VersionID)
	if err != nil {
		return nil, err
	}
	gc, err := d.clients(ctx, pol.VersionID)
	if err != nil {
		return nil, err
	}
	dc, err := (&azure.Publisher{Clients: gc}).CheckDeploy(ctx, ver, c.Subscription, vm.Location, "")
	if err != nil {
		return nil, fmt.Errorf("check-deploy %s for VM %s: %w", version, name, err)
	}
	m.State, m.Plan = StateReplace, replacePlan(vm, pol.VersionID, version, dc)
	t.Detail = fmt.Sprintf("VM %s runs %s: replace it (Azure cannot change a VM's image in place)", name, orDash(vm.ExactVersion))
	if !dc.OK {
		m.State = StateBlocked
		t.Detail = fmt.Sprintf("VM %s: %s cannot be deployed in %s yet (see its plan)", name, version, vm.Location)
	}
	return []catalog.RolloutMember{m}, nil
}

func replacePlan(vm azure.VMView, versionID, version string, dc *azure.DeployCheck) string {
	var b strings.Builder
	size := vm.Size
	if size == "" {
		size = "its size"
	}
	fmt.Fprintf(&b, "VM %s (%s) runs %s. Azure cannot change a VM's image in place: replace it.\n", vm.Name, vm.Location, orDash(vm.ExactVersion))
	fmt.Fprintf(&b, "  1. create a VM from %s\n     in %s, %s, on the same network, with the same data disks and identity\n", versionID, vm.Location, size)
	fmt.Fprintf(&b, "  2. move its traffic to the new VM and check it\n")
	fmt.Fprintf(&b, "  3. delete %s (or keep it stopped until the rollout completes, to roll back)\n", vm.ID)
	fmt.Fprintf(&b, "  The rollout counts the VM done when %s runs %s.\n\ncheck-deploy: ", vm.Name, version)
	b.WriteString(dc.Text())
	return b.String()
}
