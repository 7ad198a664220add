package rollout

// On-prem Hyper-V hosts. The members are the hosts of the image (platform
// onprem in the fleet's reports) that run an older version when the rollout
// starts (on a rollback: the version rolled back from); a host's reported
// name is taken as its VM's name. Each gets a replacement script: the
// onprem deploy-script of the version, with the old VM's name, wrapped in
// steps that check the old VM's generation, stop it and keep it under
// another name, then give the new VM the old one's switch (unless the
// policy names one), memory and processor count, and start it. A host is
// done when its agent reports the version.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"text/template"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
)

func (d *Driver) stepHosts(ctx context.Context, r catalog.Rollout, pol Policy, t *catalog.RolloutTarget, old []catalog.RolloutMember) ([]catalog.RolloutMember, error) {
	var hp *config.RolloutHost
	for i := range pol.Hosts {
		if hostsTarget(pol.Hosts[i]) == t.Target {
			hp = &pol.Hosts[i]
		}
	}
	if hp == nil {
		return nil, fmt.Errorf("rollout %d: no hosts block for %s in its policy", r.ID, t.Target)
	}
	version := r.Ref.Version
	hosts, err := d.Cat.Hosts(ctx, catalog.HostFilter{Image: r.Ref.Image, Platform: catalog.PlatformOnprem})
	if err != nil {
		return nil, err
	}
	byName := map[string]catalog.Host{}
	for _, h := range hosts {
		byName[h.Name] = h
	}
	// the members are chosen once, at the first step; hosts that report
	// later are the next rollout's
	var names []string
	if len(old) == 0 && t.Batch == 0 {
		for _, h := range hosts {
			switch {
			case h.Version == version:
			case r.RollbackOf != 0 && h.Version == r.Previous:
				names = append(names, h.Name)
			case r.RollbackOf == 0 && catalog.CompareVersions(h.Version, version) < 0:
				names = append(names, h.Name)
			}
		}
	} else {
		for _, m := range old {
			names = append(names, m.Member)
		}
	}
	t.Batch = 1 // the members are chosen
	if len(names) == 0 {
		t.State, t.Detail = catalog.RolloutCompleted, fmt.Sprintf("no on-prem host of %s runs an older version", r.Ref.Image)
		return []catalog.RolloutMember{}, nil
	}
	var lib *onprem.Library
	var md *onprem.Metadata
	lib, err = onprem.Open(hp.Library)
	if err == nil {
		md, err = lib.Get(r.Ref.Image, version)
	}
	if err != nil {
		return nil, fmt.Errorf("on-prem library %s (onprem %q): %w", hp.Library, hp.OnPrem, err)
	}
	prevPlan := map[string]string{}
	for _, m := range old {
		prevPlan[m.Member+"@"+m.Version] = m.Plan
	}
	out := make([]catalog.RolloutMember, 0, len(names))
	done := 0
	for _, n := range names {
		h, ok := byName[n]
		m := catalog.RolloutMember{Member: n, Target: t.Target, Version: h.Version, Healthy: true}
		switch {
		case !ok:
			m.State = StateMissing
		case h.Version == version:
			m.State = azure.InstanceUpgraded
			done++
		default:
			if p, ok := prevPlan[n+"@"+h.Version]; ok && p != "" {
				m.State, m.Plan = StateReplace, p // made at an earlier step
				if strings.HasPrefix(p, blockedPrefix) {
					m.State = StateBlocked
				}
				break
			}
			m.State, m.Plan = StateReplace, ""
			var oldMD *onprem.Metadata
			if o, err := lib.Get(r.Ref.Image, h.Version); err == nil {
				oldMD = o
			} else if !errors.Is(err, onprem.ErrNotFound) {
				return nil, err
			}
			script, err := ReplacementScript(md, oldMD, n, h.Version, *hp, r.ID)
			if err != nil {
				m.State, m.Plan = StateBlocked, blockedPrefix+err.Error()
			} else {
				m.Plan = script
			}
		}
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b catalog.RolloutMember) int { return strings.Compare(a.Member, b.Member) })
	if done == len(out) {
		t.State, t.Detail = catalog.RolloutCompleted, fmt.Sprintf("every host reports %s", version)
	} else {
		t.Detail = fmt.Sprintf("%d of %d hosts report %s; the others wait for their replacement script (imgpipe rollout scripts %d)", done, len(out), version, r.ID)
	}
	return out, nil
}

const blockedPrefix = "cannot replace: "

// ReplacementScript is the PowerShell that replaces VM name (running
// oldVersion, whose library metadata is oldMD when known) by a VM of the
// same name made from md: checks first, then the old VM is stopped and kept
// as NAME.replaced-OLDVERSION, then the deploy script of md, then the old
// VM's switch (unless h.Switch names one), memory and processors, and start.
// A failure before the new VM exists puts the old VM back.
func ReplacementScript(md, oldMD *onprem.Metadata, name, oldVersion string, h config.RolloutHost, rollout int64) (string, error) {
	if !config.ValidVersion(oldVersion) {
		return "", fmt.Errorf("VM %q reports version %q, which is not a version (Major.Minor.Patch)", name, oldVersion)
	}
	if err := onprem.CheckHostText("VM name", name); err != nil {
		return "", err
	}
	if oldMD != nil && oldMD.Generation != md.Generation {
		return "", fmt.Errorf("VM %s runs %s %s, Hyper-V generation %s, and %s is generation %s: a VM's generation cannot change; deploy new VMs (imgpipe onprem deploy-script)",
			name, md.Image, oldVersion, strings.TrimPrefix(oldMD.Generation, "V"), md.Version, strings.TrimPrefix(md.Generation, "V"))
	}
	deploy, err := onprem.DeployScript(md, onprem.DeployOptions{VMName: name, Switch: h.Switch, HostLibraryPath: h.HostLibraryPath})
	if err != nil {
		return "", err
	}
	gen := strings.TrimPrefix(md.Generation, "V")
	keep := name + ".replaced-" + oldVersion
	var b strings.Builder
	err = replaceTmpl.Execute(&b, map[string]any{
		"Rollout": rollout, "Image": md.Image, "Version": md.Version, "OldVersion": oldVersion, "Gen": gen,
		"Name": onprem.PSQuote(name), "Keep": onprem.PSQuote(keep),
		"Deploy": indent(deploy), "HasSwitch": h.Switch != "",
	})
	return b.String(), err
}

func indent(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "    " + l
		}
	}
	return strings.Join(lines, "\n")
}

// Name and Keep are pre-quoted (onprem.PSQuote), free of control characters;
// Image, Version and OldVersion are validated names (library metadata and
// the version grammar).
var replaceTmpl = template.Must(template.New("replace").Parse(`# Created by imgpipe rollout {{.Rollout}}: replace VM {{.Name}} ({{.Image}} {{.OldVersion}}) with {{.Image}} {{.Version}}.
# Run in an elevated PowerShell on the Hyper-V host of the VM. The old VM is
# stopped and kept as {{.Keep}} (to roll back by hand: remove the new VM,
# rename the old one back, start it); the new VM gets its name, generation,
# switch, memory and processor count. The rollout counts this host done when
# its agent reports {{.Image}} {{.Version}}.
$ErrorActionPreference = 'Stop'

$OldName  = {{.Name}}
$KeepName = {{.Keep}}
$Old = Get-VM -Name $OldName
if ($Old.Generation -ne {{.Gen}}) { throw "VM '$OldName' is Generation $($Old.Generation) and {{.Image}} {{.Version}} is Generation {{.Gen}}: a VM's generation cannot change; deploy a new VM instead." }
if (Get-VM -Name $KeepName -ErrorAction SilentlyContinue) { throw "A VM named '$KeepName' already exists: '$OldName' was replaced before; remove '$KeepName' first." }
$OldSwitch  = (Get-VMNetworkAdapter -VMName $OldName | Select-Object -First 1).SwitchName
$OldMemory  = $Old.MemoryStartup
$OldCPUs    = $Old.ProcessorCount
$WasRunning = $Old.State -ne 'Off'
if ($WasRunning) { Stop-VM -Name $OldName -Force }
Rename-VM -Name $OldName -NewName $KeepName

try {
    # ---- imgpipe onprem deploy-script {{.Image}} {{.Version}} ----
{{.Deploy}}
    # ---- as the old VM was ----
    Set-VM -Name $OldName -MemoryStartupBytes $OldMemory
    Set-VMProcessor -VMName $OldName -Count $OldCPUs
{{- if not .HasSwitch}}
    if ($OldSwitch) { Connect-VMNetworkAdapter -VMName $OldName -SwitchName $OldSwitch }
{{- end}}
} catch {
    if (-not (Get-VM -Name $OldName -ErrorAction SilentlyContinue)) {
        Rename-VM -Name $KeepName -NewName $OldName
        if ($WasRunning) { Start-VM -Name $OldName }
        throw "Replacing '$OldName' failed; the old VM is back as it was: $_"
    }
    throw "Replacing '$OldName' failed after the new VM was made; the old VM is kept, stopped, as '$KeepName': $_"
}
Start-VM -Name $OldName
Write-Output "Replaced '$OldName' with {{.Image}} {{.Version}}; the old VM is kept, stopped, as '$KeepName'."
`))
