package azemu

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// Storage accounts (Microsoft.Storage/storageAccounts) as ARM resources.
// The blobs azemu reads live in one blob service (Azurite); every blob URL
// names its account (the configured endpoint is the account of
// Options.Storage, https://NAME.blob.core.windows.net/... is account NAME),
// and the account must exist as a resource for a managed image or a gallery
// image version to be made from the blob.
//
// Sources: Storage Accounts - Create / Get Properties / Delete / List Keys /
// List / List By Resource Group (learn.microsoft.com/rest/api/storagerp/storage-accounts);
// account names are 3-24 lowercase letters and digits, unique across Azure
// (learn.microsoft.com/azure/storage/common/storage-account-overview#storage-account-name).

const storageAccountType = "Microsoft.Storage/storageAccounts"

var storageNameRE = regexp.MustCompile(`^[a-z0-9]{3,24}$`)

func storageAccountID(sub, rg, name string) string {
	return rgID(sub, rg) + "/providers/Microsoft.Storage/storageAccounts/" + name
}

// StorageAccountID is the resource id of the blob service's storage account.
func (s *Server) StorageAccountID() string {
	o := s.opts.Storage
	return storageAccountID(o.SubscriptionID, o.ResourceGroup, o.AccountName)
}

// registerStorageAccount makes the configured blob service's account (and
// its resource group) exist as resources. Caller holds s.mu (or is New).
func (s *Server) registerStorageAccount() {
	o := s.opts.Storage
	if !s.storageConfigured() {
		return
	}
	rid := rgID(o.SubscriptionID, o.ResourceGroup)
	if s.get(rid) == nil {
		s.put(&resource{ID: rid, Type: "Microsoft.Resources/resourceGroups", Created: now(), Body: map[string]any{
			"id": rid, "name": o.ResourceGroup, "type": "Microsoft.Resources/resourceGroups",
			"location": normRegion(o.Location), "properties": map[string]any{"provisioningState": "Succeeded"},
		}})
	}
	id := s.StorageAccountID()
	if s.get(id) == nil {
		s.put(&resource{ID: id, Type: storageAccountType, Created: now(),
			Body: s.storageBody(id, o.AccountName, o.Location, strings.TrimRight(o.BlobEndpoint, "/")+"/", nil)})
	}
}

func (s *Server) storageBody(id, name, loc, blobEP string, req map[string]any) map[string]any {
	sku := map[string]any{"name": "Standard_LRS", "tier": "Standard"}
	if m, ok := req["sku"].(map[string]any); ok && str(m, "name") != "" {
		sku = map[string]any{"name": str(m, "name"), "tier": "Standard"}
		if strings.HasPrefix(str(m, "name"), "Premium") {
			sku["tier"] = "Premium"
		}
	}
	kind := "StorageV2"
	if k := str(req, "kind"); k != "" {
		kind = k
	}
	body := map[string]any{
		"id": id, "name": name, "type": storageAccountType, "location": normRegion(loc),
		"kind": kind, "sku": sku,
		"properties": map[string]any{
			"provisioningState": "Succeeded",
			"primaryLocation":   normRegion(loc),
			"statusOfPrimary":   "available",
			"creationTime":      ts(now()),
			"primaryEndpoints":  map[string]any{"blob": blobEP},
		},
	}
	if t, ok := req["tags"]; ok {
		body["tags"] = t
	}
	return body
}

// accountOfBlob returns the name of the storage account a blob URL belongs to.
func (s *Server) accountOfBlob(u string) string {
	pu, err := url.Parse(u)
	if err != nil {
		return ""
	}
	if ep, err := url.Parse(s.opts.Storage.BlobEndpoint); err == nil && s.opts.Storage.BlobEndpoint != "" && strings.EqualFold(pu.Host, ep.Host) {
		return strings.ToLower(s.opts.Storage.AccountName)
	}
	if h := strings.ToLower(pu.Hostname()); strings.HasSuffix(h, ".blob.core.windows.net") {
		return strings.TrimSuffix(h, ".blob.core.windows.net")
	}
	return ""
}

// storageAccountNamed finds an account by name (names are unique across
// Azure). Caller holds s.mu.
func (s *Server) storageAccountNamed(name string) *resource {
	for _, r := range s.st.Resources {
		if strings.EqualFold(r.Type, storageAccountType) && strings.EqualFold(str(r.Body, "name"), name) {
			return r
		}
	}
	return nil
}

func (s *Server) serveStorage(c *call, p []string) {
	// p: storageAccounts[/NAME[/listKeys]]
	if len(p) == 0 || !strings.EqualFold(p[0], "storageAccounts") {
		c.fail(errf(http.StatusNotFound, "InvalidResourceType", "The resource type '%s' could not be found in the namespace 'Microsoft.Storage'.", strings.Join(p, "/")))
		return
	}
	c.typ = storageAccountType
	if e := checkAPIVersion(c.r, c.typ, ""); e != nil {
		c.fail(e)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	if len(p) == 1 {
		if c.r.Method != http.MethodGet {
			c.fail(errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method '%s' is not allowed.", c.r.Method))
			return
		}
		scope := "/subscriptions/" + c.sub
		if c.rg != "" {
			if !s.rgExists(c.sub, c.rg) {
				c.fail(rgNotFound(c.rg))
				return
			}
			scope = rgID(c.sub, c.rg)
		}
		var items []map[string]any
		for _, r := range s.all(c.typ, scope) {
			items = append(items, s.render(r, c.r))
		}
		s.writeList(c.w, c.r, items)
		return
	}
	c.name = p[1]
	c.id = storageAccountID(c.sub, c.rg, c.name)
	if !s.rgExists(c.sub, c.rg) {
		c.fail(rgNotFound(c.rg))
		return
	}
	res := s.get(c.id)
	if len(p) == 3 {
		if c.r.Method != http.MethodPost || !strings.EqualFold(p[2], "listKeys") {
			c.fail(errf(http.StatusNotFound, "InvalidResourceType", "The action '%s' is not supported for storage accounts.", p[2]))
			return
		}
		if res == nil {
			c.fail(notFound(c.typ, c.rg, c.id))
			return
		}
		if !s.canListKeys(c.r, c.sub, res) {
			c.fail(s.listKeysDenied(c, res.ID, false))
			return
		}
		val := s.opts.Storage.AccountKey
		if !strings.EqualFold(res.ID, s.StorageAccountID()) {
			b := make([]byte, 64)
			_, _ = rand.Read(b)
			val = base64.StdEncoding.EncodeToString(b)
		}
		writeJSON(c.w, http.StatusOK, map[string]any{"keys": []any{
			map[string]any{"keyName": "key1", "value": val, "permissions": "FULL", "creationTime": ts(res.Created)},
		}})
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		if res == nil {
			c.fail(notFound(c.typ, c.rg, c.id))
			return
		}
		writeJSON(c.w, http.StatusOK, s.render(res, c.r))
	case http.MethodDelete:
		if res == nil {
			c.w.WriteHeader(http.StatusNoContent)
			return
		}
		delete(s.st.Resources, key(res.ID))
		_ = s.saveLocked()
		c.w.WriteHeader(http.StatusOK)
	case http.MethodPut:
		body, e := readBody(c.r)
		if e != nil {
			c.fail(e)
			return
		}
		if !storageNameRE.MatchString(c.name) {
			c.fail(errf(http.StatusBadRequest, "AccountNameInvalid", "%s is not a valid storage account name. Storage account name must be between 3 and 24 characters in length and use numbers and lower-case letters only.", c.name))
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
		if other := s.storageAccountNamed(c.name); other != nil && !strings.EqualFold(other.ID, c.id) {
			c.fail(errf(http.StatusConflict, "StorageAccountAlreadyTaken", "The storage account named %s is already taken.", c.name))
			return
		}
		status := http.StatusOK
		if res == nil {
			res = &resource{ID: c.id, Type: c.typ, Created: now()}
		} else if normRegion(str(res.Body, "location")) != normRegion(loc) {
			c.fail(errf(http.StatusConflict, "InvalidResourceLocation", "The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'. Please select a new resource name.", c.name, str(res.Body, "location"), c.rg, normRegion(loc)))
			return
		}
		res.Body = s.storageBody(res.ID, c.name, loc, "https://"+c.name+".blob.core.windows.net/", body)
		s.put(res)
		_ = s.saveLocked()
		writeJSON(c.w, status, s.render(res, c.r))
	default:
		c.fail(errf(http.StatusMethodNotAllowed, "MethodNotAllowed", "The method '%s' is not allowed.", c.r.Method))
	}
}
