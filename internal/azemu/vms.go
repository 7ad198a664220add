package azemu

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// prepareVM records a VM or scale set; only its imageReference matters: it
// must be usable from the VM's subscription and region.
func (s *Server) prepareVM(c *call, res, existing *resource, props map[string]any) *armError {
	var ref string
	if c.typ == "Microsoft.Compute/virtualMachines" {
		ref = str(props, "storageProfile", "imageReference", "id")
		if existing == nil {
			props["vmId"] = newID()
		} else {
			props["vmId"] = str(existing.Body, "properties", "vmId")
			// A VM's image cannot change in place: Azure answers 409
			// PropertyChangeNotAllowed "Changing property 'imageReference.id'
			// is not allowed." (target imageReference.id; seen in
			// hashicorp/terraform#8796, pulumi/pulumi-azure-native#1117). The
			// VM is replaced instead (imgpipe rollout's replacement plans).
			if old := str(existing.Body, "properties", "storageProfile", "imageReference", "id"); old != "" && ref != "" && !strings.EqualFold(old, ref) {
				return errf(http.StatusConflict, "PropertyChangeNotAllowed", "Changing property 'imageReference.id' is not allowed.").withTarget("imageReference.id")
			}
		}
	} else {
		if existing != nil {
			s.syncScaleSet(existing) // vmss_rollout.go: instances keep the model they were made with
		}
		ref = str(props, "virtualMachineProfile", "storageProfile", "imageReference", "id")
		if existing == nil {
			props["uniqueId"] = newID()
		} else {
			props["uniqueId"] = str(existing.Body, "properties", "uniqueId")
		}
	}
	if ref == "" {
		return nil
	}
	exact, e := s.checkImageUse(c, c.location, ref)
	if e != nil {
		return e
	}
	if exact != "" {
		ir := obj(props, "storageProfile", "imageReference")
		if ir == nil {
			ir = obj(props, "virtualMachineProfile", "storageProfile", "imageReference")
		}
		ir["exactVersion"] = exact
	}
	return nil
}

func subOf(id string) string {
	segs := strings.Split(strings.Trim(id, "/"), "/")
	if len(segs) >= 2 && strings.EqualFold(segs[0], "subscriptions") {
		return segs[1]
	}
	return ""
}

// checkImageUse answers as Azure does when a VM or scale set references an
// image it may not use. Caller holds s.mu.
// For a gallery reference it returns the version used (imageReference.exactVersion).
func (s *Server) checkImageUse(c *call, vmLoc, ref string) (string, *armError) {
	lref := strings.ToLower(ref)
	target := "imageReference.id"
	switch {
	case strings.Contains(lref, "/providers/microsoft.compute/images/"):
		img := s.get(ref)
		if img == nil {
			return "", errf(http.StatusNotFound, "NotFound", "The Image '%s' cannot be found in '%s' region.", ref, vmLoc).withTarget(target)
		}
		if !strings.EqualFold(subOf(img.ID), c.sub) {
			return "", errf(http.StatusBadRequest, "InvalidParameter",
				"The managed image '%s' belongs to subscription '%s'; a managed image can only be used in its own subscription. Share it through a compute gallery instead.", ref, subOf(img.ID)).withTarget(target)
		}
		if normRegion(str(img.Body, "location")) != vmLoc {
			return "", errf(http.StatusBadRequest, "InvalidParameter", "The Image '%s' cannot be found in '%s' region.", ref, vmLoc).withTarget(target)
		}
		if str(img.Body, "properties", "provisioningState") != "Succeeded" {
			return "", errf(http.StatusConflict, "OperationNotAllowed", "The Image '%s' is not ready (provisioningState %s).", ref, str(img.Body, "properties", "provisioningState")).withTarget(target)
		}
		return "", nil
	case strings.Contains(lref, "/providers/microsoft.compute/galleries/"):
		galleryID := ref[:strings.Index(lref, "/providers/microsoft.compute/galleries/")+len("/providers/microsoft.compute/galleries/")]
		rest := ref[len(galleryID):]
		if i := strings.Index(rest, "/"); i >= 0 {
			galleryID += rest[:i]
		} else {
			galleryID += rest
		}
		if !strings.EqualFold(subOf(galleryID), c.sub) && !s.hasRoleAssignment(galleryID, callerObjectID(s, c.r)) {
			// A role assignment counts once it has propagated (rbac.go).
			return "", errf(http.StatusForbidden, "LinkedAuthorizationFailed", linkedAuthorizationFailure,
				callerClientID(s, c.r), callerObjectID(s, c.r), c.typ+"/write", c.id, actionGalleryVersionRead, ref)
		}
		notAvail := errf(http.StatusNotFound, "GalleryImageNotFound",
			"The gallery image %s is not available in %s region. Please contact image owner to replicate to this region, or change your requested region.", ref, vmLoc).withTarget(target)
		if strings.Contains(lref, "/versions/") {
			v := s.get(ref)
			if v == nil || !s.regionReady(v, vmLoc) {
				return "", notAvail
			}
			return v.ID[strings.LastIndex(v.ID, "/")+1:], nil
		}
		def := s.get(ref)
		if def == nil {
			return "", notAvail
		}
		latest := s.latestVersion(def, vmLoc)
		if latest == nil {
			return "", errf(http.StatusBadRequest, "InvalidParameter",
				"In region %s, the following list of gallery images referenced were not found: %s. Please check that at least one image version has been replicated to %s or that the 'exclude from latest' flag is set to false.", vmLoc, ref, vmLoc).withTarget(target)
		}
		return latest.ID[strings.LastIndex(latest.ID, "/")+1:], nil
	}
	return "", nil
}

// latestVersion picks what a definition id resolves to in a region: the
// highest version replicated there and not excluded from latest.
func (s *Server) latestVersion(def *resource, region string) *resource {
	var cands []*resource
	for _, v := range s.children(def.ID, "/versions") {
		if !s.regionReady(v, region) {
			continue
		}
		if boolean(v.Body, "properties", "publishingProfile", "excludeFromLatest") {
			continue
		}
		excluded := false
		trs, _ := obj(v.Body, "properties", "publishingProfile")["targetRegions"].([]any)
		for _, tr := range trs {
			tm, _ := tr.(map[string]any)
			if normRegion(str(tm, "name")) == normRegion(region) && boolean(tm, "excludeFromLatest") {
				excluded = true
			}
		}
		if !excluded {
			cands = append(cands, v)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	sort.Slice(cands, func(i, j int) bool { return versionLess(cands[i].ID, cands[j].ID) })
	return cands[len(cands)-1]
}

func versionLess(a, b string) bool {
	pa := strings.Split(a[strings.LastIndex(a, "/")+1:], ".")
	pb := strings.Split(b[strings.LastIndex(b, "/")+1:], ".")
	for i := 0; i < 3 && i < len(pa) && i < len(pb); i++ {
		x, _ := strconv.Atoi(pa[i])
		y, _ := strconv.Atoi(pb[i])
		if x != y {
			return x < y
		}
	}
	return false
}

// ---- role assignments ---------------------------------------------------------

func (s *Server) serveRoleAssignments(w http.ResponseWriter, r *http.Request, sub, scope string, rest []string) {
	const typ = "Microsoft.Authorization/roleAssignments"
	if len(rest) == 0 || !strings.EqualFold(rest[0], "roleAssignments") || len(rest) > 2 {
		writeArmError(w, errf(http.StatusNotFound, "InvalidResourceType", "The resource type could not be found for the request URI '%s'.", r.URL.Path))
		return
	}
	if e := checkAPIVersion(r, typ, ""); e != nil {
		writeArmError(w, e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	if len(rest) == 1 {
		if r.Method != http.MethodGet {
			writeArmError(w, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method '%s' is not allowed.", r.Method))
			return
		}
		filter := r.URL.Query().Get("$filter")
		atScope := strings.Contains(filter, "atScope()")
		principal := ""
		if i := strings.Index(filter, "principalId eq '"); i >= 0 {
			p := filter[i+len("principalId eq '"):]
			if j := strings.Index(p, "'"); j >= 0 {
				principal = p[:j]
			}
		}
		sc := key(scope)
		var items []map[string]any
		for _, ra := range s.all(typ, "/subscriptions/"+sub) {
			as := key(str(ra.Body, "properties", "scope"))
			above := sc == as || strings.HasPrefix(sc, as+"/")
			below := strings.HasPrefix(as, sc+"/")
			if !(above || (below && !atScope)) {
				continue
			}
			if principal != "" && !strings.EqualFold(principal, str(ra.Body, "properties", "principalId")) {
				continue
			}
			items = append(items, ra.Body)
		}
		s.writeList(w, r, items)
		return
	}
	name := rest[1]
	id := scope + "/providers/Microsoft.Authorization/roleAssignments/" + name
	res := s.get(id)
	switch r.Method {
	case http.MethodGet:
		if res == nil {
			writeArmError(w, errf(http.StatusNotFound, "RoleAssignmentNotFound", "The role assignment '%s' is not found.", name))
			return
		}
		writeJSON(w, http.StatusOK, res.Body)
	case http.MethodDelete:
		if res == nil {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		delete(s.st.Resources, key(id))
		_ = s.saveLocked()
		writeJSON(w, http.StatusOK, res.Body)
	case http.MethodPut:
		body, e := readBody(r)
		if e != nil {
			writeArmError(w, e)
			return
		}
		if !guidRE.MatchString(name) {
			writeArmError(w, errf(http.StatusBadRequest, "InvalidRoleAssignmentId", "The role assignment ID '%s' is not valid. The role assignment ID must be a GUID.", name))
			return
		}
		props := obj(body, "properties")
		roleDef, principal := str(props, "roleDefinitionId"), str(props, "principalId")
		if roleDef == "" || principal == "" {
			writeArmError(w, errf(http.StatusBadRequest, "InvalidRoleAssignmentRequest", "The role assignment request needs properties.roleDefinitionId and properties.principalId."))
			return
		}
		if str(props, "principalType") == "" && !s.principalVisible(principal) {
			// rbac.go: unknown or not yet replicated principals
			writeArmError(w, errf(http.StatusBadRequest, "PrincipalNotFound", principalNotFoundFormat, principal, s.opts.TenantID))
			return
		}
		if e := s.scopeExists(scope); e != nil {
			writeArmError(w, e)
			return
		}
		for _, ra := range s.all(typ, "/subscriptions/"+sub) {
			if key(ra.ID) == key(id) {
				continue
			}
			if key(str(ra.Body, "properties", "scope")) == key(scope) &&
				strings.EqualFold(str(ra.Body, "properties", "principalId"), principal) &&
				strings.EqualFold(str(ra.Body, "properties", "roleDefinitionId"), roleDef) {
				writeArmError(w, errf(http.StatusConflict, "RoleAssignmentExists", "The role assignment already exists. The ID of the existing role assignment is %s.", ra.ID[strings.LastIndex(ra.ID, "/")+1:]))
				return
			}
		}
		t := ts(now())
		status := http.StatusCreated
		created := t
		if res != nil {
			if !strings.EqualFold(str(res.Body, "properties", "principalId"), principal) || !strings.EqualFold(str(res.Body, "properties", "roleDefinitionId"), roleDef) {
				writeArmError(w, errf(http.StatusBadRequest, "RoleAssignmentUpdateNotPermitted", "Tenant ID, application ID, principal ID, and scope are not allowed to be updated."))
				return
			}
			status = http.StatusOK
			created = str(res.Body, "properties", "createdOn")
		} else {
			res = &resource{ID: id, Type: typ, Created: now()}
		}
		pt := str(props, "principalType")
		if pt == "" {
			pt = "ServicePrincipal"
		}
		oid := callerObjectID(s, r)
		res.Body = map[string]any{
			"id":   id,
			"name": name,
			"type": typ,
			"properties": map[string]any{
				"roleDefinitionId": roleDef,
				"principalId":      principal,
				"principalType":    pt,
				"scope":            scope,
				"createdOn":        created,
				"updatedOn":        t,
				"createdBy":        oid,
				"updatedBy":        oid,
			},
		}
		if d := str(props, "description"); d != "" {
			obj(res.Body, "properties")["description"] = d
		}
		s.put(res)
		_ = s.saveLocked()
		writeJSON(w, status, res.Body)
	default:
		writeArmError(w, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method '%s' is not allowed.", r.Method))
	}
}

func (s *Server) scopeExists(scope string) *armError {
	segs := strings.Split(strings.Trim(scope, "/"), "/")
	switch {
	case len(segs) == 2:
		return nil
	case len(segs) == 4:
		if s.get(scope) == nil {
			return rgNotFound(segs[3])
		}
		return nil
	}
	if s.get(scope) == nil {
		rg := ""
		if len(segs) > 3 {
			rg = segs[3]
		}
		return notFound("", rg, scope)
	}
	return nil
}
