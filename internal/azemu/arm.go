package azemu

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// armError is the ARM error body {"error":{...}} with its HTTP status.
type armError struct {
	Status  int         `json:"status"`
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Target  string      `json:"target,omitempty"`
	Details []*armError `json:"details,omitempty"`
}

func (e *armError) Error() string { return e.Code + ": " + e.Message }

func errf(status int, code, format string, args ...any) *armError {
	return &armError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *armError) withTarget(t string) *armError { e.Target = t; return e }

func (e *armError) body() map[string]any {
	m := map[string]any{"code": e.Code, "message": e.Message}
	if e.Target != "" {
		m["target"] = e.Target
	}
	if len(e.Details) > 0 {
		var ds []any
		for _, d := range e.Details {
			ds = append(ds, d.body())
		}
		m["details"] = ds
	}
	return m
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(w).Encode(v)
	}
}

func writeError(w http.ResponseWriter, status int, code, msg, target string) {
	writeArmError(w, &armError{Status: status, Code: code, Message: msg, Target: target})
}

func writeArmError(w http.ResponseWriter, e *armError) {
	w.Header().Set("x-ms-failure-cause", "gateway")
	writeJSON(w, e.Status, map[string]any{"error": e.body()})
}

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

var guidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// normRegion turns "West US" into "westus".
func normRegion(s string) string { return strings.ToLower(strings.ReplaceAll(s, " ", "")) }

func now() time.Time { return time.Now().UTC() }

func ts(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.0000000Z07:00") }

// ---- api-version -----------------------------------------------------------

var apiVersions = map[string][]string{
	"resourcegroups":  {"2021-04-01", "2022-09-01", "2023-07-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-04-01"},
	"gallery":         {"2026-03-03", "2025-12-03", "2025-03-03", "2024-03-03", "2023-07-03", "2022-08-03", "2022-03-03"},
	"compute":         {"2026-04-01", "2025-04-01", "2024-11-01", "2024-07-01", "2024-03-01", "2023-09-01", "2023-07-01"},
	"disk":            {"2026-03-02", "2025-01-02", "2024-03-02", "2023-10-02", "2023-04-02"},
	"roleassignments": {"2022-04-01", "2020-10-01-preview", "2020-04-01-preview", "2015-07-01"},
	"storage":         {"2025-06-01", "2025-01-01", "2024-01-01", "2023-05-01", "2023-01-01", "2022-09-01"},
}

func apiFamily(typ string) string {
	t := strings.ToLower(typ)
	switch {
	case strings.HasPrefix(t, "microsoft.compute/galleries"):
		return "gallery"
	case t == "microsoft.compute/disks" || t == "microsoft.compute/snapshots":
		return "disk"
	case t == "microsoft.storage/storageaccounts":
		return "storage"
	case strings.HasPrefix(t, "microsoft.compute/"):
		return "compute"
	case t == "microsoft.authorization/roleassignments":
		return "roleassignments"
	}
	return "resourcegroups"
}

// checkAPIVersion answers as ARM does when api-version is missing or not
// registered for the resource type.
func checkAPIVersion(r *http.Request, typ, location string) *armError {
	v := r.URL.Query().Get("api-version")
	if v == "" {
		return errf(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests.")
	}
	fam := apiFamily(typ)
	if slices.Contains(apiVersions[fam], v) {
		return nil
	}
	list := strings.Join(apiVersions[fam], ", ")
	if fam == "resourcegroups" {
		return errf(http.StatusBadRequest, "InvalidApiVersionParameter", "The api-version '%s' is invalid. The supported versions are '%s'.", v, list)
	}
	if location == "" {
		location = "global"
	}
	return errf(http.StatusBadRequest, "NoRegisteredProviderFound",
		"No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'. The supported locations are '%s'.",
		location, v, typeTail(typ), list, strings.Join(azureRegions, ", "))
}

func typeTail(typ string) string {
	if i := strings.Index(typ, "/"); i >= 0 {
		return typ[i+1:]
	}
	return typ
}

// ---- request parsing -------------------------------------------------------

// route is a parsed ARM path.
type route struct {
	sub, rg   string
	namespace string   // Microsoft.Compute, Microsoft.Authorization, "" for resource groups
	pairs     []string // type1, name1, type2, name2, ... (may end with a collection type)
	scope     string   // for extension resources: the scope path
	action    string
}

func readBody(r *http.Request) (map[string]any, *armError) {
	data, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, errf(http.StatusBadRequest, "InvalidRequestContent", "The request content could not be read: %v", err)
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return map[string]any{}, nil
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, errf(http.StatusBadRequest, "InvalidRequestContent", "The request content was invalid and could not be deserialized: %v", err)
	}
	if m == nil {
		m = map[string]any{}
	}
	return normalizeNumbers(m).(map[string]any), nil
}

// normalizeNumbers turns json.Number into int64 or float64.
func normalizeNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = normalizeNumbers(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = normalizeNumbers(e)
		}
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	}
	return v
}

// ---- generic JSON map helpers ---------------------------------------------

func obj(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

// ensure returns the object at path, creating it.
func ensure(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			next = map[string]any{}
			cur[p] = next
		}
		cur = next
	}
	return cur
}

func str(m map[string]any, path ...string) string {
	if len(path) == 0 || m == nil {
		return ""
	}
	o := obj(m, path[:len(path)-1]...)
	if o == nil {
		return ""
	}
	s, _ := o[path[len(path)-1]].(string)
	return s
}

func boolean(m map[string]any, path ...string) bool {
	o := obj(m, path[:len(path)-1]...)
	if o == nil {
		return false
	}
	b, _ := o[path[len(path)-1]].(bool)
	return b
}

func num(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case float64:
		return int64(x), x == float64(int64(x))
	case int:
		return int64(x), true
	}
	return 0, false
}

func setDefault(m map[string]any, k string, v any) {
	if _, ok := m[k]; !ok {
		m[k] = v
	}
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// mergePatch applies an RFC 7396 JSON merge patch.
func mergePatch(dst, patch map[string]any) {
	for k, v := range patch {
		if v == nil {
			delete(dst, k)
			continue
		}
		if pm, ok := v.(map[string]any); ok {
			dm, ok := dst[k].(map[string]any)
			if !ok {
				dm = map[string]any{}
				dst[k] = dm
			}
			mergePatch(dm, pm)
			continue
		}
		dst[k] = deepCopy(v)
	}
}

// ---- LROs ------------------------------------------------------------------

// startOp registers a long-running operation. Caller holds s.mu.
func (s *Server) startOp(r *http.Request, sub, location, resID, kind string, d time.Duration) *operation {
	t := now()
	op := &operation{
		ID: newID(), Sub: sub, Location: normRegion(location), ResourceID: resID, Kind: kind,
		APIVersion: r.URL.Query().Get("api-version"), Start: t, End: t.Add(d),
	}
	if op.Location == "" {
		op.Location = "global"
	}
	if f := s.opts.Faults; f.LROFailure > 0 && s.lroRng.Float64() < f.LROFailure {
		op.Fail = true
		op.End = t.Add(d / 2)
	}
	s.st.Ops[op.ID] = op
	return op
}

func (s *Server) opURL(op *operation) string {
	return fmt.Sprintf("%s/subscriptions/%s/providers/Microsoft.Compute/locations/%s/operations/%s?api-version=%s",
		s.url, op.Sub, op.Location, op.ID, url.QueryEscape(op.APIVersion))
}

// setLROHeaders sets Azure-AsyncOperation (and Location when withLocation)
// plus Retry-After.
func (s *Server) setLROHeaders(w http.ResponseWriter, op *operation, withLocation bool) {
	w.Header().Set("Azure-AsyncOperation", s.opURL(op))
	if withLocation {
		w.Header().Set("Location", s.opURL(op)+"&monitor=true")
	}
	s.setRetryAfter(w)
}

// tick applies every operation whose end time has passed. Caller holds s.mu.
func (s *Server) tick() {
	t := now()
	var due []*operation
	for _, op := range s.st.Ops {
		if !op.Applied && !t.Before(op.End) {
			due = append(due, op)
		}
	}
	if len(due) == 0 {
		return
	}
	sort.Slice(due, func(i, j int) bool { return due[i].End.Before(due[j].End) })
	for _, op := range due {
		s.applyOp(op)
	}
	// forget operations older than a day
	for id, op := range s.st.Ops {
		if op.Applied && t.Sub(op.End) > 24*time.Hour {
			delete(s.st.Ops, id)
		}
	}
	for p, m := range s.st.RecentDeletes {
		for c, at := range m {
			if t.Sub(at) > s.opts.DeleteConflictWindow {
				delete(m, c)
			}
		}
		if len(m) == 0 {
			delete(s.st.RecentDeletes, p)
		}
	}
	_ = s.saveLocked()
}

func (s *Server) applyOp(op *operation) {
	op.Applied = true
	res := s.get(op.ResourceID)
	if op.Fail {
		op.Status = "Failed"
		if op.Error == nil {
			op.Error = errf(http.StatusInternalServerError, "InternalOperationError",
				"The long-running operation failed midway (injected fault). Retry the request.")
		}
		if res != nil && res.PendingOp == op.ID {
			res.PendingOp = ""
			props := ensure(res.Body, "properties")
			switch op.Kind {
			case "delete":
				if op.PrevState != "" {
					props["provisioningState"] = op.PrevState
				}
			case "create", "update":
				props["provisioningState"] = "Failed"
			}
		}
		return
	}
	op.Status = "Succeeded"
	switch op.Kind {
	case "delete":
		if res == nil || res.PendingOp != op.ID {
			return
		}
		s.removeTree(res, op.End)
	case "create", "update":
		if res != nil && res.PendingOp == op.ID {
			res.PendingOp = ""
			ensure(res.Body, "properties")["provisioningState"] = "Succeeded"
		}
	case "grantAccess":
		// state was set when the request arrived; the SAS is in op.Result
	case "revokeAccess":
		if res != nil {
			props := ensure(res.Body, "properties")
			if props["diskState"] == "ActiveUpload" || props["diskState"] == "ActiveSAS" {
				props["diskState"] = "Unattached"
			}
		}
	}
}

// removeTree deletes a resource and everything below it, recording the
// delete completion for the parent's CannotDeleteResource window.
func (s *Server) removeTree(res *resource, at time.Time) {
	for _, d := range s.descendants(res.ID) {
		delete(s.st.Resources, key(d.ID))
	}
	delete(s.st.Resources, key(res.ID))
	if p := parentID(res); p != "" {
		m := s.st.RecentDeletes[key(p)]
		if m == nil {
			m = map[string]time.Time{}
			s.st.RecentDeletes[key(p)] = m
		}
		m[res.ID] = at
	}
}

// parentID returns the parent of a nested compute resource (definition ->
// gallery, version -> definition), "" otherwise.
func parentID(r *resource) string {
	switch strings.ToLower(r.Type) {
	case "microsoft.compute/galleries/images", "microsoft.compute/galleries/images/versions":
		i := strings.LastIndex(r.ID, "/")
		j := strings.LastIndex(r.ID[:i], "/")
		return r.ID[:j]
	}
	return ""
}

func (s *Server) serveOperation(w http.ResponseWriter, r *http.Request, opID string) {
	if r.URL.Query().Get("api-version") == "" {
		writeArmError(w, errf(http.StatusBadRequest, "MissingApiVersionParameter", "The api-version query parameter (?api-version=) is required for all requests."))
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	op := s.st.Ops[opID]
	if op == nil {
		writeArmError(w, errf(http.StatusNotFound, "ResourceNotFound", "The operation '%s' was not found.", opID))
		return
	}
	monitor := r.URL.Query().Get("monitor") == "true"
	if monitor {
		switch {
		case !op.Applied:
			w.Header().Set("Location", s.opURL(op)+"&monitor=true")
			s.setRetryAfter(w)
			w.WriteHeader(http.StatusAccepted)
		case op.Status == "Failed":
			writeArmError(w, op.Error)
		case op.Result != nil:
			writeJSON(w, http.StatusOK, op.Result)
		default:
			w.WriteHeader(http.StatusNoContent)
		}
		return
	}
	body := map[string]any{
		"id":        strings.TrimPrefix(s.opURL(op), s.url),
		"name":      op.ID,
		"startTime": ts(op.Start),
	}
	if i := strings.Index(body["id"].(string), "?"); i >= 0 {
		body["id"] = body["id"].(string)[:i]
	}
	total := op.End.Sub(op.Start)
	pct := 100.0
	if !op.Applied && total > 0 {
		pct = float64(now().Sub(op.Start)) / float64(total) * 100
		pct = float64(int(min(pct, 99)))
		body["status"] = "InProgress"
		s.setRetryAfter(w)
	} else {
		body["status"] = op.Status
		body["endTime"] = ts(op.End)
	}
	body["percentComplete"] = pct
	if op.Applied && op.Status == "Failed" && op.Error != nil {
		body["error"] = op.Error.body()
	}
	if op.Applied && op.Result != nil {
		body["properties"] = map[string]any{"output": op.Result}
	}
	writeJSON(w, http.StatusOK, body)
}

// ---- paging -----------------------------------------------------------------

func (s *Server) writeList(w http.ResponseWriter, r *http.Request, items []map[string]any) {
	skip := 0
	if v := r.URL.Query().Get("$skiptoken"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeArmError(w, errf(http.StatusBadRequest, "InvalidParameter", "The $skiptoken '%s' is invalid.", v).withTarget("$skiptoken"))
			return
		}
		skip = n
	}
	if skip > len(items) {
		skip = len(items)
	}
	end := min(skip+s.opts.PageSize, len(items))
	page := items[skip:end]
	if page == nil {
		page = []map[string]any{}
	}
	body := map[string]any{"value": page}
	if end < len(items) {
		q := maps.Clone(r.URL.Query())
		q.Set("$skiptoken", strconv.Itoa(end))
		body["nextLink"] = s.url + r.URL.EscapedPath() + "?" + q.Encode()
	}
	writeJSON(w, http.StatusOK, body)
}
