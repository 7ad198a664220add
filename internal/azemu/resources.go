package azemu

import (
	"context"
	"net/http"
	"regexp"
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
	if c.typ == "Microsoft.Compute/disks" {
		setDefault(out, "sku", map[string]any{"name": "Standard_LRS", "tier": "Standard"})
	}
	kind, state, status := "create", "Creating", http.StatusCreated
	if existing != nil {
		kind, state, status = "update", "Updating", http.StatusOK
	}
	props["provisioningState"] = state
	res.Body = out
	op := s.startOp(c.r, c.sub, str(out, "location"), res.ID, kind, lroD)
	res.PendingOp = op.ID
	s.put(res)
	_ = s.saveLocked()
	withLocation := false
	switch {
	case c.typ == "Microsoft.Compute/disks":
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

func (s *Server) prepareDefinition(c *call, res, existing *resource, props map[string]any) *armError {
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
		if str(props, "identifier", f) == "" {
			return errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'galleryImage.properties.identifier.%s' is missing (null).", f).withTarget("galleryImage.properties.identifier." + f)
		}
	}
	setDefault(props, "hyperVGeneration", "V1")
	switch str(props, "hyperVGeneration") {
	case "V1", "V2":
	default:
		return errf(http.StatusBadRequest, "InvalidParameter", "The value '%s' of parameter 'galleryImage.properties.hyperVGeneration' is not allowed. Allowed values are 'V1' and 'V2'.", str(props, "hyperVGeneration")).withTarget("galleryImage.properties.hyperVGeneration")
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
	srcID := str(stp, "source", "id")
	vhd := str(stp, "osDiskImage", "source", "uri")
	if vhd == "" {
		vhd = str(stp, "source", "uri")
	}
	t := now()
	if existing == nil {
		pp["publishedDate"] = ts(t)
		var srcGen string
		switch {
		case srcID != "":
			src := s.get(srcID)
			if src == nil {
				return 0, errf(http.StatusNotFound, "NotFound", "The source resource '%s' was not found.", srcID).withTarget("storageProfile.source.id")
			}
			res.SourceID = src.ID
			res.SourceCreated = src.Created
			switch strings.ToLower(src.Type) {
			case "microsoft.compute/images":
				srcGen = str(src.Body, "properties", "hyperVGeneration")
				if src.Fingerprint != nil {
					cp := *src.Fingerprint
					res.Fingerprint = &cp
				}
				if os := obj(src.Body, "properties", "storageProfile", "osDisk"); os != nil {
					odi := ensure(stp, "osDiskImage")
					setDefault(odi, "hostCaching", str(os, "caching"))
					setDefault(odi, "sizeInGB", int64(1))
					if fp != nil && fp.Size > 0 {
						odi["sizeInGB"] = (fp.Size + (1<<30 - 1)) >> 30
					} else if src.Fingerprint != nil {
						odi["sizeInGB"] = (src.Fingerprint.Size + (1<<30 - 1)) >> 30
					}
				}
			case "microsoft.compute/disks":
				srcGen = str(src.Body, "properties", "hyperVGeneration")
				if st := str(src.Body, "properties", "diskState"); st == "ActiveUpload" || st == "ReadyToUpload" {
					return 0, errf(http.StatusConflict, "OperationNotAllowed", "The source disk '%s' is in state %s; finish the upload (endGetAccess) first.", src.ID, st).withTarget("storageProfile.source.id")
				}
				if fpErr != nil {
					return 0, fpErr
				}
				res.Fingerprint = fp
			default:
				return 0, errf(http.StatusBadRequest, "InvalidParameter", "The source '%s' is not a managed image or a disk.", srcID).withTarget("storageProfile.source.id")
			}
		case vhd != "":
			if str(stp, "osDiskImage", "source", "storageAccountId") == "" && str(stp, "source", "storageAccountId") == "" {
				return 0, errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'storageAccountId' is missing (null).").withTarget("storageProfile.osDiskImage.source.storageAccountId")
			}
			if fpErr != nil {
				return 0, fpErr
			}
			res.Fingerprint = fp
			res.SourceID = vhd
			if fp != nil {
				odi := ensure(stp, "osDiskImage")
				setDefault(odi, "sizeInGB", (fp.Size+(1<<30-1))>>30)
			}
			// A VHD carries no generation: the definition's is trusted.
		default:
			return 0, errf(http.StatusBadRequest, "InvalidParameter", "Required parameter 'storageProfile.source' is missing (null).").withTarget("storageProfile.source")
		}
		defGen := str(def.Body, "properties", "hyperVGeneration")
		if srcGen == "" {
			// a VHD (or a disk created without hyperVGeneration) carries no
			// generation: the definition's is trusted
			srcGen = defGen
		}
		if srcGen != defGen {
			return 0, errf(http.StatusBadRequest, "InvalidParameter",
				"The source '%s' has HyperVGeneration %s, but gallery image definition '%s' has HyperVGeneration %s. Use a source of the definition's generation or another definition.",
				srcID, srcGen, def.ID, defGen).withTarget("storageProfile.source.id")
		}
		res.RegionStart = map[string]time.Time{}
		for _, r := range regions {
			res.RegionStart[r] = t
		}
	} else {
		props["publishingProfile"].(map[string]any)["publishedDate"] = str(existing.Body, "properties", "publishingProfile", "publishedDate")
		// source changes are not allowed; an empty storageProfile keeps it
		srcID = str(c.request, "properties", "storageProfile", "source", "id")
		oldSrc := str(existing.Body, "properties", "storageProfile", "source", "id")
		if srcID != "" && !strings.EqualFold(srcID, oldSrc) {
			return 0, errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'storageProfile.source.id' is not allowed.").withTarget("storageProfile.source.id")
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
