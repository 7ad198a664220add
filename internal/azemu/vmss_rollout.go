package azemu

// Scale-set instances and rolling upgrades.
//
// Sources (the SDK is generated from the REST spec,
// specification/compute/resource-manager/Microsoft.Compute/ComputeRP, files
// virtualMachineScaleSet.json and its examples):
//   - paths: armcompute VirtualMachineScaleSetVMsClient (List, Get,
//     GetInstanceView), VirtualMachineScaleSetRollingUpgradesClient
//     (BeginStartOSUpgrade = POST .../osRollingUpgrade, GetLatest = GET
//     .../rollingUpgrades/latest, BeginCancel = POST .../rollingUpgrades/cancel),
//     VirtualMachineScaleSetsClient.BeginUpdateInstances = POST .../manualupgrade
//     with {"instanceIds": [...]}.
//   - RollingUpgradePolicy (spec definition of the same name): maxBatchInstancePercent
//     "maximum percent of total virtual machine instances that will be upgraded
//     simultaneously ... in one batch", default 20; maxUnhealthyInstancePercent
//     "checked prior to starting any batch", default 20;
//     maxUnhealthyUpgradedInstancePercent "This check will happen after each batch is
//     upgraded. If this percentage is ever exceeded, the rolling update aborts",
//     default 20; pauseTimeBetweenBatches ISO 8601, default PT0S; the spec (and
//     the Batch docs of the same object) give 5..100 as the valid range and
//     maxBatchInstancePercent <= maxUnhealthyInstancePercent when both are set.
//   - RollingUpgradeStatusInfo: properties.policy, runningStatus{code:
//     RollingForward|Cancelled|Completed|Faulted|RollingBack, startTime,
//     lastAction: Start|Cancel, lastActionTime}, progress{successfulInstanceCount,
//     failedInstanceCount, inProgressInstanceCount, pendingInstanceCount}, error.
//   - StartOSUpgrade: "Starts a rolling upgrade to move all virtual machine scale
//     set instances to the latest available ... OS version. Instances which are
//     already running the latest available OS version are not affected." For a
//     Compute Gallery image the "latest available" is what the definition id
//     resolves to (latestVersion: the newest version not excluded from latest,
//     learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-automatic-upgrade,
//     "custom images through Azure Compute Gallery"); for a model pinned to a
//     version it is that version.
//   - exactVersion: ImageReference.exactVersion, "the version of platform image or
//     marketplace image used to create the virtual machine" (read only) — per
//     instance, it changes when the instance's OS disk is replaced.
//   - Health: VirtualMachineScaleSetVMInstanceView.vmHealth.status.code
//     "HealthState/healthy" | "HealthState/unhealthy" (Application Health
//     extension docs, learn.microsoft.com/azure/virtual-machine-scale-sets/virtual-machine-scale-sets-health-extension).
//
// azemu is stricter than Azure here: osRollingUpgrade needs
// upgradePolicy.mode Rolling (Azure also accepts automatic OS upgrade set-ups),
// and a second upgrade while one is RollingForward is a 409. It is also
// simpler: a model update does not start a rolling upgrade by itself (Azure
// does that for mode Rolling); clients call osRollingUpgrade, and must accept
// finding one already running. The error code of a Faulted upgrade is not
// given by the spec; azemu's code is descriptive — key on runningStatus.code.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	typeScaleSet       = "Microsoft.Compute/virtualMachineScaleSets"
	typeScaleSetVM     = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"
	typeRollingUpgrade = "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades"
)

// rollPlan is a rolling upgrade, decided when it starts: the batches, the
// target image and where the policy stops it. Progress is a function of time.
type rollPlan struct {
	Start     time.Time      `json:"start"`
	Policy    map[string]any `json:"policy"`
	Batches   [][]string     `json:"batches"`
	TargetRef string         `json:"targetRef"`
	Exact     string         `json:"exact"`
	Batch     time.Duration  `json:"batch"`
	Pause     time.Duration  `json:"pause"`
	// StopAfter is the number of batches that run; when it is below
	// len(Batches) (or FaultBefore is set) the upgrade ends Faulted.
	StopAfter int `json:"stopAfter"`
	// FaultBefore: the pre-batch check (maxUnhealthyInstancePercent) failed
	// before batch StopAfter; otherwise the post-batch check failed after it.
	FaultBefore bool   `json:"faultBefore,omitempty"`
	FaultCode   string `json:"faultCode,omitempty"`
	FaultMsg    string `json:"faultMsg,omitempty"`
	// Unhealthy are the instances whose new image reports unhealthy.
	Unhealthy []string  `json:"unhealthy,omitempty"`
	Cancelled time.Time `json:"cancelled,omitzero"`
	Applied   int       `json:"applied"`
	OpID      string    `json:"opId"`
}

func (p *rollPlan) batchStart(k int) time.Time {
	return p.Start.Add(time.Duration(k) * (p.Batch + p.Pause))
}
func (p *rollPlan) batchEnd(k int) time.Time { return p.batchStart(k).Add(p.Batch) }

// end is when the upgrade stops (Completed or Faulted), ignoring cancel.
func (p *rollPlan) end() time.Time {
	if p.StopAfter == 0 {
		return p.Start
	}
	return p.batchEnd(p.StopAfter - 1)
}

func (p *rollPlan) faulted() bool { return p.StopAfter < len(p.Batches) || p.FaultBefore }

// serveScaleSetChild serves the scale-set paths below a scale set; it
// returns false for any other path. p is the compute path after
// .../providers/Microsoft.Compute/.
func (s *Server) serveScaleSetChild(c *call, p []string) bool {
	eq := strings.EqualFold
	if len(p) < 3 || !eq(p[0], "virtualMachineScaleSets") {
		return false
	}
	rest, m := p[2:], c.r.Method
	var h func(c *call, ss *resource, rest []string)
	switch {
	case len(rest) == 1 && eq(rest[0], "virtualMachines") && m == http.MethodGet:
		h = s.listScaleSetVMs
	case len(rest) == 2 && eq(rest[0], "virtualMachines") && m == http.MethodGet:
		h = s.getScaleSetVM
	case len(rest) == 3 && eq(rest[0], "virtualMachines") && eq(rest[2], "instanceView") && m == http.MethodGet:
		h = s.getScaleSetVM
	case len(rest) == 1 && eq(rest[0], "osRollingUpgrade") && m == http.MethodPost:
		h = s.startOSUpgrade
	case len(rest) == 2 && eq(rest[0], "rollingUpgrades") && eq(rest[1], "latest") && m == http.MethodGet:
		h = s.getLatestUpgrade
	case len(rest) == 2 && eq(rest[0], "rollingUpgrades") && eq(rest[1], "cancel") && m == http.MethodPost:
		h = s.cancelUpgrade
	case len(rest) == 1 && eq(rest[0], "manualupgrade") && m == http.MethodPost:
		h = s.manualUpgrade
	default:
		return false
	}
	c.typ = typeScaleSet
	c.name = p[1]
	c.id = rgID(c.sub, c.rg) + "/providers/Microsoft.Compute/virtualMachineScaleSets/" + p[1]
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return true
	}
	var body map[string]any
	if m == http.MethodPost && c.r.ContentLength != 0 {
		var e *armError
		if body, e = readBody(c.r); e != nil {
			c.fail(e)
			return true
		}
	}
	c.request = body
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.resolveLocked(c)
	if !ok {
		return true
	}
	if ss == nil {
		c.fail(notFound(c.typ, c.rg, c.id))
		return true
	}
	c.id, c.location = ss.ID, normRegion(str(ss.Body, "location"))
	s.syncScaleSet(ss)
	h(c, ss, rest)
	_ = s.saveLocked()
	return true
}

// modelImage is the scale-set model's image reference and the version it
// resolves to now ("" for a managed image). Caller holds s.mu.
func (s *Server) modelImage(ss *resource) (ref, exact string) {
	ref = imageRefOf(ss)
	lref := strings.ToLower(ref)
	switch {
	case strings.Contains(lref, "/providers/microsoft.compute/galleries/") && strings.Contains(lref, "/versions/"):
		return ref, ref[strings.LastIndex(ref, "/")+1:]
	case strings.Contains(lref, "/providers/microsoft.compute/galleries/"):
		if def := s.get(ref); def != nil {
			if v := s.latestVersion(def, normRegion(str(ss.Body, "location"))); v != nil {
				return ref, v.ID[strings.LastIndex(v.ID, "/")+1:]
			}
		}
	}
	return ref, ""
}

func (s *Server) capacity(ss *resource) int {
	n, _ := num(obj(ss.Body, "sku")["capacity"])
	return int(n)
}

// syncScaleSet makes the instances match sku.capacity (new instances get the
// model's image as it resolves now; scale-in removes the highest ids) and
// applies rolling-upgrade batches whose time has come. Caller holds s.mu.
func (s *Server) syncScaleSet(ss *resource) {
	insts := s.children(ss.ID, "/virtualMachines")
	byID := map[int]*resource{}
	for _, in := range insts {
		n, _ := strconv.Atoi(str(in.Body, "instanceId"))
		byID[n] = in
	}
	want := s.capacity(ss)
	for n, in := range byID {
		if n >= want {
			delete(s.st.Resources, key(in.ID))
		}
	}
	ref, exact := s.modelImage(ss)
	for n := range want {
		if byID[n] != nil {
			continue
		}
		id := ss.ID + "/virtualMachines/" + strconv.Itoa(n)
		body := map[string]any{
			"id": id, "name": ss.Body["name"].(string) + "_" + strconv.Itoa(n),
			"type": typeScaleSetVM, "location": str(ss.Body, "location"),
			"instanceId": strconv.Itoa(n),
			"properties": map[string]any{
				"vmId":              newID(),
				"provisioningState": "Succeeded",
				"storageProfile":    map[string]any{"imageReference": imageRefBody(ref, exact)},
			},
		}
		s.put(&resource{ID: id, Type: typeScaleSetVM, Body: body, Created: now()})
	}
	if plan := s.plan(ss); plan != nil {
		s.applyBatches(ss, plan)
	}
}

func imageRefBody(ref, exact string) map[string]any {
	m := map[string]any{"id": ref}
	if exact != "" {
		m["exactVersion"] = exact
	}
	return m
}

func (s *Server) plan(ss *resource) *rollPlan {
	r := s.get(ss.ID + "/rollingUpgrades/latest")
	if r == nil {
		return nil
	}
	raw, _ := json.Marshal(r.Body["plan"])
	var p rollPlan
	if json.Unmarshal(raw, &p) != nil {
		return nil
	}
	return &p
}

func (s *Server) savePlan(ss *resource, p *rollPlan) {
	raw, _ := json.Marshal(p)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	id := ss.ID + "/rollingUpgrades/latest"
	s.put(&resource{ID: id, Type: typeRollingUpgrade, Body: map[string]any{"plan": m}, Created: now()})
}

// applyBatches gives the instances of every batch that has completed by now
// the target image. Caller holds s.mu.
func (s *Server) applyBatches(ss *resource, p *rollPlan) {
	t := now()
	changed := false
	for k := p.Applied; k < p.StopAfter; k++ {
		end := p.batchEnd(k)
		if t.Before(end) || (!p.Cancelled.IsZero() && p.Cancelled.Before(end)) {
			break
		}
		for _, id := range p.Batches[k] {
			if in := s.get(ss.ID + "/virtualMachines/" + id); in != nil {
				ensure(in.Body, "properties", "storageProfile")["imageReference"] = imageRefBody(p.TargetRef, p.Exact)
			}
		}
		p.Applied = k + 1
		changed = true
	}
	if changed {
		s.savePlan(ss, p)
	}
}

func (s *Server) instanceUnhealthy(in *resource) bool {
	v := str(in.Body, "properties", "storageProfile", "imageReference", "exactVersion")
	return v != "" && slices.Contains(s.opts.Faults.UnhealthyVersions, v)
}

func (s *Server) renderScaleSetVM(ss, in *resource, withView bool) map[string]any {
	out := deepCopy(in.Body).(map[string]any)
	props := ensure(out, "properties")
	ref, exact := s.modelImage(ss)
	ir := obj(in.Body, "properties", "storageProfile", "imageReference")
	props["latestModelApplied"] = strings.EqualFold(str(ir, "id"), ref) && str(ir, "exactVersion") == exact
	if withView {
		props["instanceView"] = s.scaleSetVMView(in)
	}
	return out
}

func (s *Server) scaleSetVMView(in *resource) map[string]any {
	health := map[string]any{"code": "HealthState/healthy", "level": "Info", "displayStatus": "The VM is healthy"}
	if s.instanceUnhealthy(in) {
		health = map[string]any{"code": "HealthState/unhealthy", "level": "Error", "displayStatus": "The VM reports itself unhealthy"}
	}
	return map[string]any{
		"computerName": str(in.Body, "name"),
		"statuses": []any{
			map[string]any{"code": "ProvisioningState/succeeded", "level": "Info", "displayStatus": "Provisioning succeeded"},
			map[string]any{"code": "PowerState/running", "level": "Info", "displayStatus": "VM running"},
		},
		"vmHealth": map[string]any{"status": health},
	}
}

func (s *Server) listScaleSetVMs(c *call, ss *resource, _ []string) {
	withView := strings.EqualFold(c.r.URL.Query().Get("$expand"), "instanceView")
	var items []map[string]any
	insts := s.children(ss.ID, "/virtualMachines")
	slices.SortFunc(insts, func(a, b *resource) int {
		x, _ := strconv.Atoi(str(a.Body, "instanceId"))
		y, _ := strconv.Atoi(str(b.Body, "instanceId"))
		return x - y
	})
	for _, in := range insts {
		items = append(items, s.renderScaleSetVM(ss, in, withView))
	}
	s.writeList(c.w, c.r, items)
}

func (s *Server) getScaleSetVM(c *call, ss *resource, rest []string) {
	in := s.get(ss.ID + "/virtualMachines/" + rest[1])
	if in == nil {
		c.fail(notFound(typeScaleSetVM, c.rg, ss.ID+"/virtualMachines/"+rest[1]))
		return
	}
	if len(rest) == 3 {
		writeJSON(c.w, http.StatusOK, s.scaleSetVMView(in))
		return
	}
	writeJSON(c.w, http.StatusOK, s.renderScaleSetVM(ss, in, strings.EqualFold(c.r.URL.Query().Get("$expand"), "instanceView")))
}

var isoDurRE = regexp.MustCompile(`^PT(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$`)

// parseISODuration reads the PT#H#M#S form pauseTimeBetweenBatches uses.
func parseISODuration(v string) (time.Duration, bool) {
	m := isoDurRE.FindStringSubmatch(v)
	if m == nil || v == "PT" {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			f, _ := strconv.ParseFloat(m[i+1], 64)
			d += time.Duration(f * float64(unit))
		}
	}
	return d, true
}

// rollingPolicy returns the effective policy with the documented defaults,
// or an error for values the spec refuses.
func rollingPolicy(ss *resource) (map[string]any, time.Duration, *armError) {
	pol := deepCopy(obj(ss.Body, "properties", "upgradePolicy", "rollingUpgradePolicy")).(map[string]any)
	if pol == nil {
		pol = map[string]any{}
	}
	const target = "properties.upgradePolicy.rollingUpgradePolicy"
	for _, k := range []string{"maxBatchInstancePercent", "maxUnhealthyInstancePercent", "maxUnhealthyUpgradedInstancePercent"} {
		v, ok := num(pol[k])
		if pol[k] == nil {
			v, ok = 20, true
		}
		// maxUnhealthyUpgradedInstancePercent may be 0..100; the others 5..100.
		lo := int64(5)
		if k == "maxUnhealthyUpgradedInstancePercent" {
			lo = 0
		}
		if !ok || v < lo || v > 100 {
			return nil, 0, errf(http.StatusBadRequest, "InvalidParameter", "The value of parameter %s is invalid: %v (allowed %d..100).", k, pol[k], lo).withTarget(target + "." + k)
		}
		pol[k] = v
	}
	if _, set := obj(ss.Body, "properties", "upgradePolicy", "rollingUpgradePolicy")["maxUnhealthyInstancePercent"]; set && pol["maxBatchInstancePercent"].(int64) > pol["maxUnhealthyInstancePercent"].(int64) {
		return nil, 0, errf(http.StatusBadRequest, "InvalidParameter", "maxBatchInstancePercent (%d) must not be more than maxUnhealthyInstancePercent (%d).", pol["maxBatchInstancePercent"], pol["maxUnhealthyInstancePercent"]).withTarget(target)
	}
	pause := time.Duration(0)
	if v, _ := pol["pauseTimeBetweenBatches"].(string); v != "" {
		d, ok := parseISODuration(v)
		if !ok {
			return nil, 0, errf(http.StatusBadRequest, "InvalidParameter", "pauseTimeBetweenBatches '%s' is not an ISO 8601 duration such as PT5S.", v).withTarget(target + ".pauseTimeBetweenBatches")
		}
		pause = d
	} else {
		pol["pauseTimeBetweenBatches"] = "PT0S"
	}
	return pol, pause, nil
}

func (s *Server) startOSUpgrade(c *call, ss *resource, _ []string) {
	if mode := str(ss.Body, "properties", "upgradePolicy", "mode"); !strings.EqualFold(mode, "Rolling") {
		c.fail(errf(http.StatusConflict, "OperationNotAllowed",
			"The scale set '%s' has upgradePolicy.mode '%s'; a rolling OS upgrade needs upgradePolicy.mode Rolling (or use manualupgrade for mode Manual).", c.name, mode))
		return
	}
	if old := s.plan(ss); old != nil && old.Cancelled.IsZero() && now().Before(old.end()) {
		c.fail(errf(http.StatusConflict, "RollingUpgradeInProgress", "A rolling upgrade is already in progress for the scale set '%s'. Wait for it or cancel it first.", c.name))
		return
	}
	pol, pause, e := rollingPolicy(ss)
	if e != nil {
		c.fail(e)
		return
	}
	ref, exact := s.modelImage(ss)
	if exact == "" {
		c.fail(errf(http.StatusBadRequest, "InvalidParameter", "The scale set '%s' model does not reference a Compute Gallery image whose version can be resolved in %s.", c.name, c.location).withTarget("properties.virtualMachineProfile.storageProfile.imageReference"))
		return
	}
	insts := s.children(ss.ID, "/virtualMachines")
	slices.SortFunc(insts, func(a, b *resource) int {
		x, _ := strconv.Atoi(str(a.Body, "instanceId"))
		y, _ := strconv.Atoi(str(b.Body, "instanceId"))
		return x - y
	})
	total := len(insts)
	var todo []string
	unhealthyNow := 0
	for _, in := range insts {
		ir := obj(in.Body, "properties", "storageProfile", "imageReference")
		if s.instanceUnhealthy(in) {
			unhealthyNow++
		}
		// "Instances which are already running the latest ... are not affected."
		if !strings.EqualFold(str(ir, "id"), ref) || str(ir, "exactVersion") != exact {
			todo = append(todo, str(in.Body, "instanceId"))
		}
	}
	size := max(1, total*int(pol["maxBatchInstancePercent"].(int64))/100)
	p := &rollPlan{Start: now(), Policy: pol, TargetRef: ref, Exact: exact, Batch: s.opts.LRODelay, Pause: pause}
	for i := 0; i < len(todo); i += size {
		p.Batches = append(p.Batches, todo[i:min(i+size, len(todo))])
	}
	newBad := slices.Contains(s.opts.Faults.UnhealthyVersions, exact)
	maxUnhealthy := int(pol["maxUnhealthyInstancePercent"].(int64))
	maxUnhealthyUpgraded := int(pol["maxUnhealthyUpgradedInstancePercent"].(int64))
	p.StopAfter = len(p.Batches)
	upgraded, badUpgraded := 0, 0
	for k, b := range p.Batches {
		// before any batch: the share unhealthy in the whole scale set
		if total > 0 && unhealthyNow*100 > maxUnhealthy*total {
			p.StopAfter, p.FaultBefore = k, true
			p.FaultCode = "MaxUnhealthyInstancePercentExceededInRollingUpgrade"
			p.FaultMsg = fmt.Sprintf("Rolling upgrade stopped before batch %d: %d of %d instances are unhealthy, more than maxUnhealthyInstancePercent %d%%.", k+1, unhealthyNow, total, maxUnhealthy)
			break
		}
		for _, id := range b {
			in := s.get(ss.ID + "/virtualMachines/" + id)
			was := in != nil && s.instanceUnhealthy(in)
			upgraded++
			if newBad {
				badUpgraded++
				p.Unhealthy = append(p.Unhealthy, id)
				if !was {
					unhealthyNow++
				}
			} else if was {
				unhealthyNow--
			}
		}
		// after each batch: the share of upgraded instances unhealthy
		if badUpgraded*100 > maxUnhealthyUpgraded*upgraded {
			p.StopAfter = k + 1
			p.FaultCode = "MaxUnhealthyUpgradedInstancePercentExceededInRollingUpgrade"
			p.FaultMsg = fmt.Sprintf("Rolling upgrade failed after batch %d: %d of %d upgraded instances are unhealthy on version %s, more than maxUnhealthyUpgradedInstancePercent %d%%. Instances: %s.",
				k+1, badUpgraded, upgraded, exact, maxUnhealthyUpgraded, strings.Join(p.Unhealthy, ", "))
			break
		}
	}
	op := s.startOp(c.r, c.sub, c.location, ss.ID, "rollingUpgrade", p.end().Sub(p.Start))
	if p.faulted() {
		op.Fail = true
		op.Error = errf(http.StatusConflict, p.FaultCode, "%s", p.FaultMsg)
	}
	p.OpID = op.ID
	s.savePlan(ss, p)
	s.setLROHeaders(c.w, op, true)
	c.w.WriteHeader(http.StatusAccepted)
}

func (s *Server) getLatestUpgrade(c *call, ss *resource, _ []string) {
	p := s.plan(ss)
	if p == nil {
		c.fail(errf(http.StatusNotFound, "NotFound", "The scale set '%s' has no rolling upgrade.", c.name))
		return
	}
	t := now()
	code, last, lastAt := "RollingForward", "Start", p.Start
	done := 0 // batches completed
	for done < p.StopAfter && !t.Before(p.batchEnd(done)) && (p.Cancelled.IsZero() || !p.Cancelled.Before(p.batchEnd(done))) {
		done++
	}
	inProgress := 0
	switch {
	case !p.Cancelled.IsZero() && !p.Cancelled.After(t):
		code, last, lastAt = "Cancelled", "Cancel", p.Cancelled
	case p.faulted() && !t.Before(p.end()):
		code, lastAt = "Faulted", p.end()
	case done == len(p.Batches):
		code, lastAt = "Completed", p.end()
	default:
		if done < len(p.Batches) && !t.Before(p.batchStart(done)) {
			inProgress = len(p.Batches[done])
		}
	}
	succeeded, failed := 0, 0
	for k := range done {
		for _, id := range p.Batches[k] {
			if slices.Contains(p.Unhealthy, id) {
				failed++
			} else {
				succeeded++
			}
		}
	}
	pending := -succeeded - failed - inProgress
	for _, b := range p.Batches {
		pending += len(b)
	}
	props := map[string]any{
		"policy": p.Policy,
		"runningStatus": map[string]any{
			"code": code, "startTime": ts(p.Start), "lastAction": last, "lastActionTime": ts(lastAt),
		},
		"progress": map[string]any{
			"successfulInstanceCount": succeeded, "failedInstanceCount": failed,
			"inProgressInstanceCount": inProgress, "pendingInstanceCount": pending,
		},
	}
	if code == "Faulted" {
		props["error"] = map[string]any{"code": p.FaultCode, "message": p.FaultMsg}
	}
	writeJSON(c.w, http.StatusOK, map[string]any{
		"id":         ss.ID + "/rollingUpgrades/latest",
		"name":       "latest",
		"type":       typeRollingUpgrade,
		"location":   str(ss.Body, "location"),
		"properties": props,
	})
}

func (s *Server) cancelUpgrade(c *call, ss *resource, _ []string) {
	p := s.plan(ss)
	if p == nil || !p.Cancelled.IsZero() || !now().Before(p.end()) {
		c.fail(errf(http.StatusConflict, "OperationNotAllowed", "The scale set '%s' has no rolling upgrade in progress to cancel.", c.name))
		return
	}
	p.Cancelled = now()
	if op := s.st.Ops[p.OpID]; op != nil && !op.Applied {
		op.End = p.Cancelled
		op.Fail = true
		op.Error = errf(http.StatusConflict, "OperationPreempted", "The rolling upgrade of '%s' was cancelled.", c.name)
	}
	s.savePlan(ss, p)
	op := s.startOp(c.r, c.sub, c.location, ss.ID, "cancelRollingUpgrade", 0)
	s.setLROHeaders(c.w, op, true)
	c.w.WriteHeader(http.StatusAccepted)
}

// manualUpgrade (VirtualMachineScaleSets_UpdateInstances) brings the named
// instances to the latest model at once, whatever the upgrade mode.
func (s *Server) manualUpgrade(c *call, ss *resource, _ []string) {
	raw, _ := c.request["instanceIds"].([]any)
	if len(raw) == 0 {
		c.fail(errf(http.StatusBadRequest, "InvalidParameter", "instanceIds is required and must not be empty.").withTarget("instanceIds"))
		return
	}
	if p := s.plan(ss); p != nil && p.Cancelled.IsZero() && now().Before(p.end()) {
		c.fail(errf(http.StatusConflict, "RollingUpgradeInProgress", "A rolling upgrade is in progress for the scale set '%s'.", c.name))
		return
	}
	ref, exact := s.modelImage(ss)
	var insts []*resource
	for _, v := range raw {
		id, _ := v.(string)
		in := s.get(ss.ID + "/virtualMachines/" + id)
		if in == nil {
			c.fail(errf(http.StatusNotFound, "NotFound", "The scale set '%s' has no instance '%s'.", c.name, id).withTarget("instanceIds"))
			return
		}
		insts = append(insts, in)
	}
	for _, in := range insts {
		ensure(in.Body, "properties", "storageProfile")["imageReference"] = imageRefBody(ref, exact)
	}
	op := s.startOp(c.r, c.sub, c.location, ss.ID, "manualUpgrade", s.opts.LRODelay)
	s.setLROHeaders(c.w, op, true)
	c.w.WriteHeader(http.StatusAccepted)
}
