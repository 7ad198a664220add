package azemu

import (
	"context"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ---- resource groups --------------------------------------------------------

func (s *Server) serveResourceGroup(c *call) {
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	res := s.get(c.id)
	switch c.r.Method {
	case http.MethodHead:
		if res == nil {
			c.w.WriteHeader(http.StatusNotFound)
			return
		}
		c.w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		if res == nil {
			c.fail(rgNotFound(c.rg))
			return
		}
		writeJSON(c.w, http.StatusOK, res.Body)
	case http.MethodPut, http.MethodPatch:
		body, e := readBody(c.r)
		if e != nil {
			c.fail(e)
			return
		}
		if c.r.Method == http.MethodPatch {
			if res == nil {
				c.fail(rgNotFound(c.rg))
				return
			}
			if t, ok := body["tags"]; ok {
				res.Body["tags"] = t
			}
			_ = s.saveLocked()
			writeJSON(c.w, http.StatusOK, res.Body)
			return
		}
		loc := str(body, "location")
		if loc == "" {
			c.fail(errf(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition."))
			return
		}
		if !validRegion(loc) {
			c.fail(locationError(loc, c.typ))
			return
		}
		status := http.StatusOK
		if res == nil {
			status = http.StatusCreated
			res = &resource{ID: c.id, Type: c.typ, Created: now()}
		} else if normRegion(str(res.Body, "location")) != normRegion(loc) {
			c.fail(errf(http.StatusConflict, "InvalidResourceGroupLocation",
				"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", normRegion(loc), str(res.Body, "location")))
			return
		}
		res.Body = map[string]any{
			"id":         res.ID,
			"name":       c.name,
			"type":       "Microsoft.Resources/resourceGroups",
			"location":   normRegion(loc),
			"properties": map[string]any{"provisioningState": "Succeeded"},
		}
		if t, ok := body["tags"]; ok {
			res.Body["tags"] = t
		}
		s.put(res)
		_ = s.saveLocked()
		writeJSON(c.w, status, res.Body)
	case http.MethodDelete:
		if res == nil {
			c.fail(rgNotFound(c.rg))
			return
		}
		op := s.startOp(c.r, c.sub, "global", res.ID, "delete", s.opts.LRODelay)
		op.PrevState = "Succeeded"
		res.PendingOp = op.ID
		ensure(res.Body, "properties")["provisioningState"] = "Deleting"
		_ = s.saveLocked()
		c.w.Header().Set("Location", s.opURL(op)+"&monitor=true")
		s.setRetryAfter(c.w)
		c.w.WriteHeader(http.StatusAccepted)
	default:
		c.fail(errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method '%s' is not allowed.", c.r.Method))
	}
}

func (s *Server) listResourceGroups(c *call) {
	if e := checkAPIVersion(c.r, "Microsoft.Resources/resourceGroups", ""); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	var items []map[string]any
	for _, r := range s.all("Microsoft.Resources/resourceGroups", "/subscriptions/"+c.sub) {
		items = append(items, r.Body)
	}
	s.writeList(c.w, c.r, items)
}

// ---- generic compute resources ---------------------------------------------

func (s *Server) rgExists(sub, rg string) bool { return s.get(rgID(sub, rg)) != nil }

func (s *Server) listCompute(c *call, parent string) {
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	if c.rg != "" && !s.rgExists(c.sub, c.rg) {
		c.fail(rgNotFound(c.rg))
		return
	}
	if strings.Count(strings.TrimPrefix(c.typ, "Microsoft.Compute/"), "/") > 0 && s.get(parent) == nil {
		c.fail(errf(http.StatusNotFound, "ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' not found.", parent[strings.LastIndex(parent, "/")+1:]))
		return
	}
	var items []map[string]any
	for _, r := range s.all(c.typ, parent) {
		if strings.Count(strings.TrimPrefix(key(r.ID), key(parent)), "/") != 2 && c.rg != "" {
			continue
		}
		items = append(items, s.render(r, c.r))
	}
	s.writeList(c.w, c.r, items)
}

// render returns the ARM representation of a resource as of now.
func (s *Server) render(res *resource, r *http.Request) map[string]any {
	out := deepCopy(res.Body).(map[string]any)
	if !res.Created.IsZero() {
		// ARM's resource metadata; clients use createdAt to tell a resource
		// from a later one made under the same name.
		created := res.Created.UTC().Format(time.RFC3339Nano)
		out["systemData"] = map[string]any{
			"createdBy": s.opts.ClientID, "createdByType": "Application", "createdAt": created,
			"lastModifiedBy": s.opts.ClientID, "lastModifiedByType": "Application", "lastModifiedAt": created,
		}
	}
	if strings.EqualFold(res.Type, "Microsoft.Compute/galleries/images/versions") {
		if strings.EqualFold(r.URL.Query().Get("$expand"), "ReplicationStatus") {
			ensure(out, "properties")["replicationStatus"] = s.replicationStatus(res)
		}
	}
	return out
}

func (s *Server) getResource(c *call) {
	s.mu.Lock()
	res := s.get(c.id)
	loc := ""
	if res != nil {
		loc = str(res.Body, "location")
	}
	s.mu.Unlock()
	if e := checkAPIVersion(c.r, c.typ, loc); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, ok := s.resolveLocked(c)
	if !ok {
		return
	}
	if res == nil {
		c.fail(notFound(c.typ, c.rg, c.id))
		return
	}
	writeJSON(c.w, http.StatusOK, s.render(res, c.r))
}

// resolveLocked, with s.mu held, advances emulated time, checks the call's
// resource group and returns its resource (nil when absent). ok=false means
// the resource group is missing and the error is already written.
func (s *Server) resolveLocked(c *call) (res *resource, ok bool) {
	s.tick()
	if !s.rgExists(c.sub, c.rg) {
		c.fail(rgNotFound(c.rg))
		return nil, false
	}
	return s.get(c.id), true
}

func (s *Server) deleteResource(c *call) {
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	res, ok := s.resolveLocked(c)
	if !ok {
		return
	}
	if res == nil {
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	if op := s.st.Ops[res.PendingOp]; op != nil && op.Kind == "delete" && !op.Applied {
		s.setLROHeaders(c.w, op, true)
		c.w.WriteHeader(http.StatusAccepted)
		return
	}
	if e := s.deleteCheck(res, c.r); e != nil {
		c.fail(e)
		return
	}
	op := s.startOp(c.r, c.sub, str(res.Body, "location"), res.ID, "delete", s.opts.LRODelay)
	props := ensure(res.Body, "properties")
	op.PrevState, _ = props["provisioningState"].(string)
	if op.PrevState == "" || op.PrevState == "Creating" || op.PrevState == "Updating" {
		op.PrevState = "Succeeded"
	}
	res.PendingOp = op.ID
	if _, ok := props["provisioningState"]; ok {
		props["provisioningState"] = "Deleting"
	}
	_ = s.saveLocked()
	s.setLROHeaders(c.w, op, true)
	c.w.WriteHeader(http.StatusAccepted)
	if strings.EqualFold(res.Type, "Microsoft.Compute/disks") && res.BlobName != "" {
		name := res.BlobName
		go s.deleteBlob(context.Background(), name)
	}
}

// deleteCheck enforces the dependency rules of deletes. Caller holds s.mu.
func (s *Server) deleteCheck(res *resource, r *http.Request) *armError {
	t := now()
	nested := func(childSeg string) *armError {
		var ids []string
		for _, ch := range s.children(res.ID, childSeg) {
			ids = append(ids, ch.ID)
		}
		if len(ids) == 0 {
			// ARM's cache lags: the same 409 keeps coming for a while after
			// the last child's delete completed.
			for id, at := range s.st.RecentDeletes[key(res.ID)] {
				if t.Sub(at) < s.opts.DeleteConflictWindow {
					ids = append(ids, id)
				}
			}
		}
		if len(ids) == 0 {
			return nil
		}
		e := errf(http.StatusConflict, "CannotDeleteResource",
			"Can not delete resource before nested resources are deleted. Nested resources: %s.", strings.Join(ids, ", "))
		for _, id := range ids {
			e.Details = append(e.Details, errf(http.StatusConflict, "NestedResourceExists", "Nested resource '%s' exists.", id).withTarget(id))
		}
		return e
	}
	switch strings.ToLower(res.Type) {
	case "microsoft.compute/galleries":
		return nested("/images")
	case "microsoft.compute/galleries/images":
		return nested("/versions")
	case "microsoft.compute/galleries/images/versions":
		if boolean(res.Body, "properties", "safetyProfile", "blockDeletionBeforeEndOfLife") {
			eol := str(res.Body, "properties", "publishingProfile", "endOfLifeDate")
			if et, err := time.Parse(time.RFC3339, eol); err == nil && t.Before(et) {
				return errf(http.StatusConflict, "OperationNotAllowed",
					"Gallery image version '%s' cannot be deleted before its end of life date %s because safetyProfile.blockDeletionBeforeEndOfLife is set.", res.ID, eol)
			}
		}
	case "microsoft.compute/images":
		var users []string
		for _, r := range s.st.Resources {
			if ref := imageRefOf(r); ref != "" && strings.EqualFold(ref, res.ID) {
				users = append(users, r.ID)
			}
		}
		if len(users) > 0 {
			return errf(http.StatusConflict, "OperationNotAllowed",
				"The Image '%s' is currently in use by %s. Delete them before deleting the image.", res.ID, strings.Join(users, ", "))
		}
	case "microsoft.compute/disks":
		if str(res.Body, "properties", "diskState") == "ActiveUpload" {
			return errf(http.StatusConflict, "OperationNotAllowed",
				"Disk '%s' is in ActiveUpload state. Call endGetAccess before deleting it.", res.ID)
		}
	}
	return nil
}

// imageRefOf returns the imageReference.id of a VM or scale set.
func imageRefOf(r *resource) string {
	switch strings.ToLower(r.Type) {
	case "microsoft.compute/virtualmachines":
		return str(r.Body, "properties", "storageProfile", "imageReference", "id")
	case "microsoft.compute/virtualmachinescalesets":
		return str(r.Body, "properties", "virtualMachineProfile", "storageProfile", "imageReference", "id")
	}
	return ""
}

// putResource serves PUT (create or replace) and PATCH (update).
func (s *Server) putResource(c *call) {
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	existing := s.get(c.id)
	s.mu.Unlock()
	loc := str(body, "location")
	if existing != nil && loc == "" {
		loc = str(existing.Body, "location")
	}
	if e := checkAPIVersion(c.r, c.typ, normRegion(loc)); e != nil {
		c.fail(e)
		return
	}
	// Content fingerprints need the blob service: read outside the lock.
	var fp *Fingerprint
	var fpErr *armError
	if existing == nil || c.typ == "Microsoft.Compute/galleries/images/versions" {
		if u := s.blobToFingerprint(c, body); u != "" {
			fp, fpErr = s.fingerprintBlob(c.r.Context(), u)
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	existing, ok := s.resolveLocked(c)
	if !ok {
		return
	}
	c.request = deepCopy(body).(map[string]any)
	if c.r.Method == http.MethodPatch {
		if existing == nil {
			c.fail(notFound(c.typ, c.rg, c.id))
			return
		}
		merged := deepCopy(existing.Body).(map[string]any)
		mergePatch(merged, body)
		body = merged
	}
	if existing != nil {
		if op := s.st.Ops[existing.PendingOp]; op != nil && op.Kind == "delete" && !op.Applied {
			c.fail(errf(http.StatusConflict, "OperationNotAllowed", "The resource '%s' is being deleted. Wait for the delete to complete.", existing.ID))
			return
		}
	}
	if str(body, "location") == "" {
		c.fail(errf(http.StatusBadRequest, "LocationRequired", "The location property is required for this definition."))
		return
	}
	if !validRegion(str(body, "location")) {
		c.fail(locationError(str(body, "location"), c.typ))
		return
	}
	if existing != nil && normRegion(str(existing.Body, "location")) != normRegion(str(body, "location")) {
		// "The resource <name> already exists in location <region_1> in
		// resource group <resourceGroup>. A resource with the same name cannot
		// be created in location <region_2>."
		// (learn.microsoft.com/azure/virtual-machines/troubleshooting-shared-images)
		c.fail(errf(http.StatusConflict, "InvalidResourceLocation",
			"The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'. Please select a new resource name.",
			c.name, str(existing.Body, "location"), c.rg, normRegion(str(body, "location"))))
		return
	}
	if _, ok := body["properties"].(map[string]any); !ok && body["properties"] != nil {
		c.fail(errf(http.StatusBadRequest, "InvalidRequestContent", "The 'properties' member must be an object."))
		return
	}
	props := ensure(body, "properties")
	c.location = normRegion(str(body, "location"))
	res := &resource{ID: c.id, Type: c.typ, Created: now()}
	if existing != nil {
		cp := *existing
		res = &cp
	}
	var (
		err   *armError
		lroD  = s.opts.LRODelay
		extra time.Duration
	)
	switch c.typ {
	case "Microsoft.Compute/images":
		err = s.prepareImage(c, res, existing, props, fp, fpErr)
	case "Microsoft.Compute/galleries":
		err = s.prepareGallery(c, res, existing, props)
	case "Microsoft.Compute/galleries/images":
		err = s.prepareDefinition(c, res, existing, props)
	case "Microsoft.Compute/galleries/images/versions":
		extra, err = s.prepareVersion(c, res, existing, body, props, fp, fpErr)
	case "Microsoft.Compute/disks":
		err = s.prepareDisk(c, res, existing, props)
	case "Microsoft.Compute/snapshots":
		err = s.prepareSnapshot(c, res, existing, props, fp, fpErr)
	case "Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachineScaleSets":
		err = s.prepareVM(c, res, existing, props)
	}
	if err != nil {
		c.fail(err)
		return
	}
	if extra > lroD {
		lroD = extra
	}
	out := map[string]any{
		"id":         res.ID,
		"name":       c.name,
		"type":       c.typ,
		"location":   normRegion(str(body, "location")),
		"properties": props,
	}
	if t, ok := body["tags"]; ok {
		out["tags"] = t
	}
	for _, k := range []string{"sku", "zones", "identity", "plan", "extendedLocation"} {
		if v, ok := body[k]; ok {
			out[k] = v
		}
	}
	if c.typ == "Microsoft.Compute/disks" || c.typ == "Microsoft.Compute/snapshots" {
		setDefault(out, "sku", map[string]any{"name": "Standard_LRS", "tier": "Standard"})
	}
	kind, state, status := "create", "Creating", http.StatusCreated
	if existing != nil {
		kind, state, status = "update", "Updating", http.StatusOK
	}
	props["provisioningState"] = state
	res.Body = out
	op := s.startOp(c.r, c.sub, str(out, "location"), res.ID, kind, lroD)
	if c.lroError != nil {
		op.Fail, op.Error, op.End = true, c.lroError, op.Start.Add(s.opts.LRODelay/2)
	}
	res.PendingOp = op.ID
	s.put(res)
	_ = s.saveLocked()
	withLocation := false
	switch {
	case c.typ == "Microsoft.Compute/disks" || c.typ == "Microsoft.Compute/snapshots":
		status, withLocation = http.StatusAccepted, true
	case c.r.Method == http.MethodPatch:
		status = http.StatusOK
	}
	s.setLROHeaders(c.w, op, withLocation)
	writeJSON(c.w, status, s.render(res, c.r))
}

// ---- managed images ----------------------------------------------------------

func (s *Server) prepareImage(c *call, res, existing *resource, props map[string]any, fp *Fingerprint, fpErr *armError) *armError {
	osDisk := obj(props, "storageProfile", "osDisk")
	if osDisk == nil {
		return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'osDisk' is missing (null).").withTarget("osDisk")
	}
	switch str(osDisk, "osType") {
	case "Linux", "Windows":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'osDisk.osType' is not allowed. Allowed values are 'Windows' and 'Linux'.", str(osDisk, "osType")).withTarget("osDisk.osType")
	}
	switch str(osDisk, "osState") {
	case "Generalized", "Specialized":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'osDisk.osState' is not allowed. Allowed values are 'Generalized' and 'Specialized'.", str(osDisk, "osState")).withTarget("osDisk.osState")
	}
	blob := str(osDisk, "blobUri")
	diskID := str(osDisk, "managedDisk", "id")
	snapID := str(osDisk, "snapshot", "id")
	if blob == "" && diskID == "" && snapID == "" {
		return errf(http.StatusBadRequest, "InvalidParameter", "One of 'osDisk.blobUri', 'osDisk.managedDisk.id' or 'osDisk.snapshot.id' is required.").withTarget("osDisk")
	}
	setDefault(osDisk, "caching", "ReadWrite")
	setDefault(osDisk, "storageAccountType", "Standard_LRS")
	sp := ensure(props, "storageProfile")
	setDefault(sp, "dataDisks", []any{})
	setDefault(sp, "zoneResilient", false)
	setDefault(props, "hyperVGeneration", "V1")
	if existing != nil {
		old := obj(existing.Body, "properties", "storageProfile", "osDisk")
		for _, f := range []string{"blobUri", "osType"} {
			if str(old, f) != str(osDisk, f) {
				return errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'osDisk.%s' is not allowed.", f).withTarget("osDisk." + f)
			}
		}
		if str(existing.Body, "properties", "hyperVGeneration") != str(props, "hyperVGeneration") {
			return errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'hyperVGeneration' is not allowed.").withTarget("hyperVGeneration")
		}
		// the content stays what it was copied from
		return nil
	}
	defer func() {
		if res.Fingerprint != nil {
			setDefault(osDisk, "diskSizeGB", (res.Fingerprint.Size+(1<<30-1))>>30)
		}
	}()
	switch {
	case blob != "":
		if e := s.imageBlobAccount(c, blob); e != nil {
			return e
		}
		if fpErr != nil {
			return fpErr
		}
		res.Fingerprint = fp
	case diskID != "":
		d := s.get(diskID)
		if d == nil {
			return errf(http.StatusNotFound, "NotFound", "Resource '%s' was not found.", diskID).withTarget("osDisk.managedDisk.id")
		}
		if fp != nil {
			res.Fingerprint = fp
		} else if d.Fingerprint != nil {
			cp := *d.Fingerprint
			res.Fingerprint = &cp
		}
	default:
		return errf(http.StatusNotFound, "NotFound", "Resource '%s' was not found.", snapID).withTarget("osDisk.snapshot.id")
	}
	return nil
}

// ---- galleries -----------------------------------------------------------------

var galleryNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.]{0,78}[A-Za-z0-9]$|^[A-Za-z0-9]$`)

func (s *Server) prepareGallery(c *call, res, existing *resource, props map[string]any) *armError {
	if !galleryNameRE.MatchString(c.name) {
		return errf(http.StatusBadRequest, "InvalidParameter", "The gallery name '%s' is invalid: use alphanumerics, underscores and periods, starting and ending with an alphanumeric, at most 80 characters.", c.name).withTarget("galleryName")
	}
	if existing == nil {
		// "The gallery name '<name>' is not unique within the subscription
		// '<sub>'. Please pick another gallery name." (Azure/azure-cli#11967;
		// the gallery's identifier.uniqueName is SUBSCRIPTION-NAME)
		for _, g := range s.all("Microsoft.Compute/galleries", "/subscriptions/"+c.sub) {
			if strings.EqualFold(str(g.Body, "name"), c.name) && !strings.EqualFold(g.ID, c.id) {
				return errf(http.StatusConflict, "Conflict", "The gallery name '%s' is not unique within the subscription '%s'. Please pick another gallery name.", c.name, c.sub).withTarget("galleryName")
			}
		}
	} else {
		props["sharingProfile"] = deepCopy(obj(existing.Body, "properties", "sharingProfile"))
		if props["sharingProfile"] == nil {
			delete(props, "sharingProfile")
		}
		if sp := obj(c.request, "properties", "sharingProfile"); sp != nil && str(sp, "permissions") != "" {
			ensure(props, "sharingProfile")["permissions"] = str(sp, "permissions")
		}
	}
	if sp := obj(props, "sharingProfile"); sp != nil {
		switch str(sp, "permissions") {
		case "", "Private", "Groups", "Community":
		default:
			return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'sharingProfile.permissions' is not allowed. Allowed values are 'Private', 'Groups' and 'Community'.", str(sp, "permissions")).withTarget("sharingProfile.permissions")
		}
		setDefault(sp, "permissions", "Private")
		setDefault(sp, "groups", []any{})
	}
	id := ensure(props, "identifier")
	id["uniqueName"] = c.sub + "-" + strings.ToUpper(c.name)
	return nil
}

func (s *Server) parentOf(c *call) (*resource, *armError) {
	p := c.id[:strings.LastIndex(c.id, "/")]
	p = p[:strings.LastIndex(p, "/")]
	pr := s.get(p)
	if pr == nil {
		return nil, errf(http.StatusNotFound, "ParentResourceNotFound",
			"Can not perform requested operation on nested resource. Parent resource '%s' not found.", p[strings.LastIndex(p, "/")+1:])
	}
	if op := s.st.Ops[pr.PendingOp]; op != nil && op.Kind == "delete" && !op.Applied {
		return nil, errf(http.StatusConflict, "OperationNotAllowed", "Parent resource '%s' is being deleted.", pr.ID)
	}
	return pr, nil
}

// definitionNameOK is the rule of the spec's galleryImageName parameter,
// ^[^_\W][\w-._]{0,79}(?<![-.])$, and of the docs, which also refuse a
// trailing '_' ("letters or numbers at the beginning and the end")
// (learn.microsoft.com/azure/virtual-machines/troubleshooting-shared-images,
// "Issues with creating or modifying image definitions").
var definitionNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9])?$`)

// identifierRE is the rule of galleryImage.properties.identifier.* (same
// page): letters, digits, '-', '.', '_', not ending in '.'; publisher at
// most 128 characters, offer and sku at most 64.
var identifierRE = regexp.MustCompile(`^[A-Za-z0-9_.-]*[A-Za-z0-9_-]$`)

// Security types (features SecurityType=...) that need a generation 2
// definition: Trusted launch and confidential VMs are Gen2 only
// (learn.microsoft.com/azure/virtual-machines/trusted-launch, "Limitations";
// learn.microsoft.com/azure/confidential-computing/confidential-vm-overview).
var gen2SecurityTypes = map[string]bool{
	"trustedlaunch": true, "trustedlaunchsupported": true, "confidentialvm": true,
	"confidentialvmsupported": true, "trustedlaunchandconfidentialvmsupported": true,
}

// securityType returns the SecurityType feature of a definition ("" if none).
func securityType(props map[string]any) string {
	fs, _ := props["features"].([]any)
	for _, f := range fs {
		fm, _ := f.(map[string]any)
		if strings.EqualFold(str(fm, "name"), "SecurityType") {
			return str(fm, "value")
		}
	}
	return ""
}

func (s *Server) prepareDefinition(c *call, res, existing *resource, props map[string]any) *armError {
	if !definitionNameRE.MatchString(c.name) {
		return errf(http.StatusBadRequest, "InvalidParameter",
			"The entity name 'galleryImageName' is invalid according to its validation rule: ^[^_\\W][\\w-._]{0,79}(?<![-.])$. Use at most 80 letters, digits, '-', '_' and '.', starting and ending with a letter or digit.").withTarget("galleryImageName")
	}
	if _, e := s.parentOf(c); e != nil {
		return e
	}
	switch str(props, "osType") {
	case "Linux", "Windows":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'galleryImage.properties.osType' is not allowed. Allowed values are 'Windows' and 'Linux'.", str(props, "osType")).withTarget("galleryImage.properties.osType")
	}
	switch str(props, "osState") {
	case "Generalized", "Specialized":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'galleryImage.properties.osState' is not allowed. Allowed values are 'Generalized' and 'Specialized'.", str(props, "osState")).withTarget("galleryImage.properties.osState")
	}
	for _, f := range []string{"publisher", "offer", "sku"} {
		v := str(props, "identifier", f)
		if v == "" {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'galleryImage.properties.identifier.%s' is missing (null).", f).withTarget("galleryImage.properties.identifier." + f)
		}
		limit := 64
		if f == "publisher" {
			limit = 128
		}
		if !identifierRE.MatchString(v) || len(v) > limit {
			return errf(http.StatusBadRequest, "InvalidParameter",
				"The resource name galleryImage.properties.identifier.%s is invalid. It cannot be empty. Allowed characters are uppercase or lowercase letters, digits, hyphen(-), period (.), underscore (_). Names are not allowed to end with period(.). The length of the name cannot exceed %d characters.", f, limit).withTarget("galleryImage.properties.identifier." + f)
		}
	}
	setDefault(props, "hyperVGeneration", "V1")
	switch str(props, "hyperVGeneration") {
	case "V1", "V2":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'galleryImage.properties.hyperVGeneration' is not allowed. Allowed values are 'V1' and 'V2'.", str(props, "hyperVGeneration")).withTarget("galleryImage.properties.hyperVGeneration")
	}
	if st := securityType(props); gen2SecurityTypes[strings.ToLower(st)] && str(props, "hyperVGeneration") != "V2" {
		return errf(http.StatusBadRequest, "InvalidParameter",
			"The security type '%s' is supported only with HyperVGeneration V2; gallery image definition '%s' has HyperVGeneration %s.", st, c.name, str(props, "hyperVGeneration")).withTarget("galleryImage.properties.features")
	}
	if existing == nil {
		// "Gallery image <name> identified by (publisher:<P>, offer:<O>,
		// sku:<S>) already exists. Choose a different publisher, offer, sku
		// combination." (troubleshooting-shared-images, same page)
		galleryID := c.id[:strings.LastIndex(strings.ToLower(c.id), "/images/")]
		for _, d := range s.children(galleryID, "/images") {
			if strings.EqualFold(d.ID, c.id) {
				continue
			}
			same := true
			for _, f := range []string{"publisher", "offer", "sku"} {
				if !strings.EqualFold(str(d.Body, "properties", "identifier", f), str(props, "identifier", f)) {
					same = false
				}
			}
			if same {
				return errf(http.StatusConflict, "Conflict",
					"Gallery image %s identified by (publisher:%s, offer:%s, sku:%s) already exists. Choose a different publisher, offer, sku combination.",
					str(d.Body, "name"), str(props, "identifier", "publisher"), str(props, "identifier", "offer"), str(props, "identifier", "sku")).withTarget("galleryImage.properties.identifier")
			}
		}
	}
	setDefault(props, "architecture", "x64")
	if existing != nil {
		old := obj(existing.Body, "properties")
		for _, f := range [][]string{{"osType"}, {"osState"}, {"hyperVGeneration"}, {"identifier", "publisher"}, {"identifier", "offer"}, {"identifier", "sku"}} {
			if str(old, f...) != str(props, f...) {
				name := "galleryImage.properties." + strings.Join(f, ".")
				return errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property '%s' is not allowed.", name).withTarget(name)
			}
		}
	}
	return nil
}

var versionNameRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)

func validVersionName(n string) bool {
	m := versionNameRE.FindStringSubmatch(n)
	if m == nil {
		return false
	}
	for _, p := range m[1:] {
		if _, err := strconv.ParseInt(p, 10, 32); err != nil {
			return false
		}
	}
	return true
}

// prepareVersion validates a gallery image version; it returns how long the
// operation takes (replication to the slowest region).
func (s *Server) prepareVersion(c *call, res, existing *resource, body, props map[string]any, fp *Fingerprint, fpErr *armError) (time.Duration, *armError) {
	if !validVersionName(c.name) {
		return 0, errf(http.StatusBadRequest, "InvalidParameter",
			"The gallery image version name '%s' is invalid. It must follow the Major(int32).Minor(int32).Patch(int32) format, for example 1.0.0.", c.name).withTarget("galleryImageVersionName")
	}
	def, e := s.parentOf(c)
	if e != nil {
		return 0, e
	}
	loc := normRegion(str(body, "location"))
	pp := ensure(props, "publishingProfile")
	setDefault(pp, "replicaCount", int64(1))
	setDefault(pp, "storageAccountType", "Standard_LRS")
	setDefault(pp, "excludeFromLatest", false)
	trs, _ := pp["targetRegions"].([]any)
	if len(trs) == 0 {
		trs = []any{map[string]any{"name": str(body, "location")}}
	}
	seen := map[string]bool{}
	var regions []string
	for _, t := range trs {
		tm, ok := t.(map[string]any)
		if !ok || str(tm, "name") == "" {
			return 0, errf(http.StatusBadRequest, "InvalidParameter", "Each target region needs a name.").withTarget("publishingProfile.targetRegions")
		}
		n := normRegion(str(tm, "name"))
		if !validRegion(n) {
			return 0, errf(http.StatusBadRequest, "InvalidParameter", "The target region '%s' is not a valid Azure region.", str(tm, "name")).withTarget("publishingProfile.targetRegions")
		}
		if seen[n] {
			return 0, errf(http.StatusBadRequest, "InvalidParameter", "Duplicate regions are not allowed in target publishing regions.").withTarget("publishingProfile.targetRegions")
		}
		seen[n] = true
		regions = append(regions, n)
		setDefault(tm, "regionalReplicaCount", pp["replicaCount"])
		setDefault(tm, "storageAccountType", pp["storageAccountType"])
		setDefault(tm, "excludeFromLatest", pp["excludeFromLatest"])
	}
	if !seen[loc] {
		return 0, errf(http.StatusBadRequest, "InvalidParameter", "The source region '%s' of the gallery image version must be one of its target regions.", loc).withTarget("publishingProfile.targetRegions")
	}
	pp["targetRegions"] = trs
	sp := ensure(props, "safetyProfile")
	setDefault(sp, "allowDeletionOfReplicatedLocations", true)
	setDefault(sp, "blockDeletionBeforeEndOfLife", false)
	setDefault(sp, "reportedForPolicyViolation", false)
	if boolean(props, "safetyProfile", "blockDeletionBeforeEndOfLife") && str(pp, "endOfLifeDate") == "" {
		return 0, errf(http.StatusBadRequest, "InvalidParameter", "safetyProfile.blockDeletionBeforeEndOfLife requires publishingProfile.endOfLifeDate.").withTarget("publishingProfile.endOfLifeDate")
	}
	if v := str(pp, "endOfLifeDate"); v != "" {
		if _, err := time.Parse(time.RFC3339, v); err != nil {
			return 0, errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'publishingProfile.endOfLifeDate' is not a valid date-time.", v).withTarget("publishingProfile.endOfLifeDate")
		}
	}
	stp := ensure(props, "storageProfile")
	t := now()
	if existing == nil {
		pp["publishedDate"] = ts(t)
		if e := s.versionSource(c, res, def, stp, fp, fpErr); e != nil {
			return 0, e
		}
		res.RegionStart = map[string]time.Time{}
		for _, r := range regions {
			res.RegionStart[r] = t
		}
	} else {
		props["publishingProfile"].(map[string]any)["publishedDate"] = str(existing.Body, "properties", "publishingProfile", "publishedDate")
		// source changes are not allowed; an empty storageProfile keeps it
		srcID := str(c.request, "properties", "storageProfile", "source", "id")
		oldSrc := str(existing.Body, "properties", "storageProfile", "source", "id")
		if srcID != "" && !strings.EqualFold(key(srcID), key(oldSrc)) {
			return 0, errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'storageProfile.source.id' is not allowed.").withTarget("storageProfile.source.id")
		}
		// With safetyProfile.allowDeletionOfReplicatedLocations = false,
		// Azure refuses an update that drops a replicated region (spec:
		// GalleryImageVersionSafetyProfile "Indicates whether or not removing
		// this Gallery Image Version from replicated regions is allowed";
		// dropping one by omission is an outage: Azure/azure-cli#24099).
		var dropped []string
		for r := range existing.RegionStart {
			if !seen[r] {
				dropped = append(dropped, r)
			}
		}
		sort.Strings(dropped)
		allowDrop := boolean(existing.Body, "properties", "safetyProfile", "allowDeletionOfReplicatedLocations") &&
			boolean(props, "safetyProfile", "allowDeletionOfReplicatedLocations")
		if len(dropped) > 0 && !allowDrop {
			return 0, errf(http.StatusBadRequest, "InvalidParameter",
				"Removing replicated regions %s from gallery image version '%s' is not allowed: its safetyProfile.allowDeletionOfReplicatedLocations is false. Keep every region in publishingProfile.targetRegions, or set allowDeletionOfReplicatedLocations to true first.",
				strings.Join(dropped, ", "), existing.ID).withTarget("publishingProfile.targetRegions")
		}
		var added []string
		for _, r := range regions {
			if _, ok := existing.RegionStart[r]; !ok {
				added = append(added, r)
			}
		}
		if len(added) > 0 && !s.sourceExists(c.r.Context(), existing) {
			if s.opts.ReplicaPolicy == ReplicaPolicyStrict || srcID != "" {
				return 0, errf(http.StatusBadRequest, "InvalidParameter",
					"Cannot add target regions %s to gallery image version '%s': its source '%s' no longer exists. Replication to a new region needs the source.",
					strings.Join(added, ", "), existing.ID, existing.SourceID).withTarget("storageProfile.source.id")
			}
		}
		// keep the recorded storage profile (the copy does not change)
		props["storageProfile"] = deepCopy(obj(existing.Body, "properties", "storageProfile"))
		res.RegionStart = map[string]time.Time{}
		for _, r := range regions {
			if st, ok := existing.RegionStart[r]; ok {
				res.RegionStart[r] = st
			} else {
				res.RegionStart[r] = t
			}
		}
	}
	// replication takes ReplicationDuration*(i+1)/n for the i-th region
	var longest time.Duration
	for i, r := range regions {
		done := res.RegionStart[r].Add(s.opts.ReplicationDuration * time.Duration(i+1) / time.Duration(len(regions)))
		if d := done.Sub(t); d > longest {
			longest = d
		}
	}
	return longest, nil
}

// regionDone reports the per-region replication progress (0..100).
func (s *Server) regionProgress(res *resource) (names []string, progress []int) {
	trs, _ := obj(res.Body, "properties", "publishingProfile")["targetRegions"].([]any)
	n := len(trs)
	t := now()
	for i, tr := range trs {
		tm, _ := tr.(map[string]any)
		name := str(tm, "name")
		start, ok := res.RegionStart[normRegion(name)]
		p := 100
		if ok {
			d := s.opts.ReplicationDuration * time.Duration(i+1) / time.Duration(n)
			if d > 0 {
				p = int(float64(t.Sub(start)) / float64(d) * 100)
			}
			p = max(0, min(p, 100))
		}
		names = append(names, name)
		progress = append(progress, p)
	}
	return names, progress
}

func (s *Server) replicationStatus(res *resource) map[string]any {
	names, progress := s.regionProgress(res)
	agg := "Completed"
	var summary []any
	for i, n := range names {
		state := "Completed"
		if progress[i] < 100 {
			state, agg = "Replicating", "InProgress"
		}
		summary = append(summary, map[string]any{"region": n, "state": state, "details": "", "progress": int64(progress[i])})
	}
	return map[string]any{"aggregatedState": agg, "summary": summary}
}

// regionReady reports whether a version is fully replicated to region.
func (s *Server) regionReady(res *resource, region string) bool {
	names, progress := s.regionProgress(res)
	for i, n := range names {
		if normRegion(n) == normRegion(region) {
			return progress[i] >= 100
		}
	}
	return false
}

// galleryShare serves POST .../galleries/{g}/share (Gallery Sharing Profile
// - Update): Add, Remove or Reset the subscriptions and tenants a gallery is
// directly shared with, or EnableCommunity. Direct sharing needs a gallery
// created with sharingProfile.permissions = Groups, community sharing one
// with Community (learn.microsoft.com/azure/virtual-machines/share-gallery-direct;
// spec examples Gallery_AddToSharingProfile, Gallery_ResetSharingProfile).
func (s *Server) galleryShare(c *call) {
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	body, e := readBody(c.r)
	if e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	g, ok := s.resolveLocked(c)
	if !ok {
		return
	}
	if g == nil {
		c.fail(notFound(c.typ, c.rg, c.id))
		return
	}
	op := str(body, "operationType")
	sp := ensure(g.Body, "properties", "sharingProfile")
	setDefault(sp, "permissions", "Private")
	perm := str(sp, "permissions")
	groups, _ := body["groups"].([]any)
	switch op {
	case "Add", "Remove", "Reset":
		if perm != "Groups" {
			c.fail(errf(http.StatusBadRequest, "InvalidParameter", "Gallery '%s' has sharingProfile.permissions '%s': direct sharing needs a gallery whose sharingProfile.permissions is 'Groups'.", c.name, perm).withTarget("sharingProfile.permissions"))
			return
		}
	case "EnableCommunity":
		if perm != "Community" {
			c.fail(errf(http.StatusBadRequest, "InvalidParameter", "Gallery '%s' has sharingProfile.permissions '%s': community sharing needs 'Community' and a communityGalleryInfo.", c.name, perm).withTarget("sharingProfile.permissions"))
			return
		}
	default:
		c.fail(errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'operationType' is not allowed. Allowed values are 'Add', 'Remove', 'Reset' and 'EnableCommunity'.", op).withTarget("operationType"))
		return
	}
	cur := map[string]map[string]bool{}
	order := []string{}
	if op != "Reset" {
		old, _ := sp["groups"].([]any)
		for _, gr := range old {
			gm, _ := gr.(map[string]any)
			typ := str(gm, "type")
			if cur[typ] == nil {
				cur[typ] = map[string]bool{}
				order = append(order, typ)
			}
			ids, _ := gm["ids"].([]any)
			for _, id := range ids {
				if v, ok := id.(string); ok {
					cur[typ][strings.ToLower(v)] = true
				}
			}
		}
	}
	for _, gr := range groups {
		gm, _ := gr.(map[string]any)
		typ := str(gm, "type")
		if typ != "Subscriptions" && typ != "AADTenants" {
			c.fail(errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of 'groups.type' is not allowed. Allowed values are 'Subscriptions' and 'AADTenants'.", typ).withTarget("groups.type"))
			return
		}
		ids, _ := gm["ids"].([]any)
		for _, id := range ids {
			v, _ := id.(string)
			if !guidRE.MatchString(v) {
				c.fail(errf(http.StatusBadRequest, "InvalidParameter", "'%s' is not a valid subscription or tenant id.", v).withTarget("groups.ids"))
				return
			}
			if op == "Remove" {
				delete(cur[typ], strings.ToLower(v))
				continue
			}
			if cur[typ] == nil {
				cur[typ] = map[string]bool{}
				order = append(order, typ)
			}
			cur[typ][strings.ToLower(v)] = true
		}
	}
	var out []any
	for _, typ := range order {
		var ids []string
		for id := range cur[typ] {
			ids = append(ids, id)
		}
		if len(ids) == 0 {
			continue
		}
		sort.Strings(ids)
		var anyIDs []any
		for _, id := range ids {
			anyIDs = append(anyIDs, id)
		}
		out = append(out, map[string]any{"type": typ, "ids": anyIDs})
	}
	if out == nil {
		out = []any{}
	}
	sp["groups"] = out
	lro := s.startOp(c.r, c.sub, str(g.Body, "location"), g.ID, "share", s.opts.LRODelay)
	lro.Result = map[string]any{"operationType": op}
	if op != "Reset" {
		lro.Result["groups"] = deepCopy(out)
	}
	_ = s.saveLocked()
	s.setLROHeaders(c.w, lro, true)
	// the 202 carries the sharing update, as the spec's examples show
	writeJSON(c.w, http.StatusAccepted, lro.Result)
}
