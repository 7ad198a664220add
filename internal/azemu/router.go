package azemu

import (
	"log/slog"
	"net/http"
	"strings"
	"time"
)

var computeTypes = map[string]string{
	"images":                    "Microsoft.Compute/images",
	"galleries":                 "Microsoft.Compute/galleries",
	"galleries/images":          "Microsoft.Compute/galleries/images",
	"galleries/images/versions": "Microsoft.Compute/galleries/images/versions",
	"disks":                     "Microsoft.Compute/disks",
	"snapshots":                 "Microsoft.Compute/snapshots",
	"virtualmachines":           "Microsoft.Compute/virtualMachines",
	"virtualmachinescalesets":   "Microsoft.Compute/virtualMachineScaleSets",
}

// call is one ARM request being served.
type call struct {
	w        http.ResponseWriter
	r        *http.Request
	sub      string
	rg       string
	typ      string // canonical resource type
	id       string // resource id (as the client spelled it)
	name     string
	action   string
	location string         // normalized location of the resource being written
	request  map[string]any // the request body as sent (before a PATCH merge)
	// lroError, set while validating a PUT, makes the request succeed (201)
	// and its long-running operation end Failed with this error, as Azure
	// answers checks it makes after accepting the request.
	lroError *armError
}

func (c *call) fail(e *armError) { writeArmError(c.w, e) }

func rgID(sub, rg string) string { return "/subscriptions/" + sub + "/resourceGroups/" + rg }

func notFound(typ, rg, id string) *armError {
	// "Microsoft.Compute/galleries/g/images/d" style name
	tail := id
	if i := strings.Index(strings.ToLower(id), "/providers/"); i >= 0 {
		tail = id[i+len("/providers/"):]
	}
	return errf(http.StatusNotFound, "ResourceNotFound",
		"The Resource '%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix", tail, rg)
}

func rgNotFound(rg string) *armError {
	return errf(http.StatusNotFound, "ResourceGroupNotFound", "Resource group '%s' could not be found.", rg)
}

func (s *Server) serveARM(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() {
		slog.Debug("azemu", "method", r.Method, "path", r.URL.Path, "took", time.Since(start))
	}()
	segs := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	eq := strings.EqualFold
	if len(segs) < 2 || !eq(segs[0], "subscriptions") {
		writeArmError(w, errf(http.StatusNotFound, "NotFound", "No HTTP resource was found that matches the request URI '%s'.", r.URL.Path))
		return
	}
	sub := segs[1]
	if !guidRE.MatchString(sub) {
		writeArmError(w, errf(http.StatusBadRequest, "InvalidSubscriptionId", "The provided subscription identifier '%s' is malformed or invalid.", sub))
		return
	}
	rest := segs[2:]
	// long-running operation status
	if len(rest) == 6 && eq(rest[0], "providers") && eq(rest[1], "Microsoft.Compute") && eq(rest[2], "locations") && eq(rest[4], "operations") {
		s.serveOperation(w, r, rest[5])
		return
	}
	// role assignments (extension resource on any scope)
	for i := 0; i+1 < len(segs); i++ {
		if eq(segs[i], "providers") && eq(segs[i+1], "Microsoft.Authorization") {
			scope := "/" + strings.Join(segs[:i], "/")
			s.serveRoleAssignments(w, r, sub, scope, segs[i+2:])
			return
		}
	}
	c := &call{w: w, r: r, sub: sub}
	switch {
	case len(rest) == 1 && eq(rest[0], "resourcegroups"):
		s.listResourceGroups(c)
		return
	case len(rest) == 2 && eq(rest[0], "resourcegroups"):
		c.rg, c.name, c.typ = rest[1], rest[1], "Microsoft.Resources/resourceGroups"
		c.id = rgID(sub, c.rg)
		s.serveResourceGroup(c)
		return
	case len(rest) == 3 && eq(rest[0], "providers") && eq(rest[1], "Microsoft.Compute"):
		typ, ok := computeTypes[strings.ToLower(rest[2])]
		if !ok || r.Method != http.MethodGet {
			break
		}
		c.typ = typ
		s.listCompute(c, "/subscriptions/"+sub)
		return
	case len(rest) >= 3 && eq(rest[0], "providers") && eq(rest[1], "Microsoft.Storage"):
		s.serveStorage(c, rest[2:])
		return
	case len(rest) >= 5 && eq(rest[0], "resourcegroups") && eq(rest[2], "providers") && eq(rest[3], "Microsoft.Storage"):
		c.rg = rest[1]
		s.serveStorage(c, rest[4:])
		return
	case len(rest) >= 5 && eq(rest[0], "resourcegroups") && eq(rest[2], "providers") && eq(rest[3], "Microsoft.Compute"):
		c.rg = rest[1]
		s.serveCompute(c, rest[4:])
		return
	}
	writeArmError(w, errf(http.StatusNotFound, "InvalidResourceType", "The resource type could not be found for the request URI '%s'.", r.URL.Path))
}

func (s *Server) serveCompute(c *call, p []string) {
	if s.serveScaleSetChild(c, p) { // vmss_rollout.go
		return
	}
	var types, names []string
	if len(p)%2 == 1 {
		if c.r.Method == http.MethodPost && len(p) >= 3 {
			c.action = p[len(p)-1]
			p = p[:len(p)-1]
		} else {
			// collection under a parent
			for i := 0; i+1 < len(p)-1; i += 2 {
				types = append(types, strings.ToLower(p[i]))
				names = append(names, p[i+1])
			}
			types = append(types, strings.ToLower(p[len(p)-1]))
			typ, ok := computeTypes[strings.Join(types, "/")]
			if !ok || c.r.Method != http.MethodGet {
				writeArmError(c.w, errf(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace 'Microsoft.Compute'.", strings.Join(types, "/")))
				return
			}
			c.typ = typ
			parent := rgID(c.sub, c.rg) + "/providers/Microsoft.Compute"
			canon := strings.Split(strings.TrimPrefix(typ, "Microsoft.Compute/"), "/")
			for i, n := range names {
				parent += "/" + canon[i] + "/" + n
			}
			s.listCompute(c, parent)
			return
		}
	}
	for i := 0; i+1 < len(p); i += 2 {
		types = append(types, strings.ToLower(p[i]))
		names = append(names, p[i+1])
	}
	typ, ok := computeTypes[strings.Join(types, "/")]
	if !ok {
		writeArmError(c.w, errf(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace 'Microsoft.Compute'.", strings.Join(types, "/")))
		return
	}
	c.typ = typ
	canon := strings.Split(strings.TrimPrefix(typ, "Microsoft.Compute/"), "/")
	c.id = rgID(c.sub, c.rg) + "/providers/Microsoft.Compute"
	for i, n := range names {
		c.id += "/" + canon[i] + "/" + n
	}
	c.name = names[len(names)-1]
	s.mu.Lock()
	if existing := s.get(c.id); existing != nil {
		c.id = existing.ID
	}
	s.mu.Unlock()

	if c.action != "" && typ == "Microsoft.Compute/galleries" && strings.EqualFold(c.action, "share") {
		s.galleryShare(c)
		return
	}
	if c.action != "" {
		if typ != "Microsoft.Compute/disks" {
			writeArmError(c.w, errf(http.StatusNotFound, "InvalidResourceType", "The action '%s' is not supported for '%s'.", c.action, typ))
			return
		}
		switch strings.ToLower(c.action) {
		case "begingetaccess":
			s.diskGrantAccess(c)
		case "endgetaccess":
			s.diskRevokeAccess(c)
		default:
			writeArmError(c.w, errf(http.StatusNotFound, "InvalidResourceType", "The action '%s' is not supported for disks.", c.action))
		}
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		s.getResource(c)
	case http.MethodDelete:
		s.deleteResource(c)
	case http.MethodPut, http.MethodPatch:
		s.putResource(c)
	default:
		writeArmError(c.w, errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method '%s' is not allowed for '%s'.", c.r.Method, typ))
	}
}
