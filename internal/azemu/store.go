package azemu

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"imgpipe/internal/atomicfile"
)

// Fingerprint identifies the content a copy was made from, recorded when
// the copy (managed image, gallery image version) was created.
type Fingerprint struct {
	Source string    `json:"source"`           // blob URL or resource id the content came from
	MD5    string    `json:"md5,omitempty"`    // hex MD5 of the content (empty if too large to hash)
	Size   int64     `json:"size"`             // bytes
	ETag   string    `json:"etag,omitempty"`   // blob ETag at copy time
	Stored string    `json:"stored,omitempty"` // the blob's Content-MD5 property, base64, if any
	Taken  time.Time `json:"taken"`
}

// resource is one ARM resource held by the emulator.
type resource struct {
	ID      string         `json:"id"`
	Type    string         `json:"type"` // e.g. Microsoft.Compute/galleries/images
	Body    map[string]any `json:"body"` // the ARM representation returned by GET
	Created time.Time      `json:"created"`
	// PendingOp is the operation that drives provisioningState.
	PendingOp string `json:"pendingOp,omitempty"`
	// Fingerprint of the content of an image, version or disk.
	Fingerprint *Fingerprint `json:"fingerprint,omitempty"`
	// SourceID is the source a gallery image version was made from.
	SourceID string `json:"sourceId,omitempty"`
	// SourceCreated is the creation time of that source (a managed image).
	SourceCreated time.Time `json:"sourceCreated,omitzero"`
	// RegionStart holds, per normalized region, when replication to it began.
	RegionStart map[string]time.Time `json:"regionStart,omitempty"`
	// BlobName is the page blob of a disk upload.
	BlobName string `json:"blobName,omitempty"`
}

// operation is a long-running operation.
type operation struct {
	ID         string         `json:"id"`
	Sub        string         `json:"sub"`
	Location   string         `json:"location"`
	ResourceID string         `json:"resourceId"`
	Kind       string         `json:"kind"` // create, update, delete, grantAccess, revokeAccess
	APIVersion string         `json:"apiVersion"`
	Start      time.Time      `json:"start"`
	End        time.Time      `json:"end"`
	Fail       bool           `json:"fail,omitempty"`
	Applied    bool           `json:"applied,omitempty"`
	Status     string         `json:"status,omitempty"` // final status once applied
	Error      *armError      `json:"error,omitempty"`
	Result     map[string]any `json:"result,omitempty"`
	PrevState  string         `json:"prevState,omitempty"`
}

type state struct {
	Resources map[string]*resource  `json:"resources"`
	Ops       map[string]*operation `json:"operations"`
	// RecentDeletes maps a parent id (lower case) to its children whose
	// delete completed recently (child id -> completion time).
	RecentDeletes map[string]map[string]time.Time `json:"recentDeletes"`
	TokenKey      []byte                          `json:"tokenKey"`
	// Principals are the object ids the emulated directory knows, with the
	// time each was added (they propagate after RBACDelay).
	Principals map[string]time.Time `json:"principals,omitempty"`
	dir        string
}

const stateFile = "state.json"

func loadState(dir string) (*state, error) {
	st := &state{
		Resources:     map[string]*resource{},
		Ops:           map[string]*operation{},
		RecentDeletes: map[string]map[string]time.Time{},
		Principals:    map[string]time.Time{},
		dir:           dir,
	}
	if dir == "" {
		return st, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("azemu: create state directory: %w", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("azemu: read state: %w", err)
	}
	if err := json.Unmarshal(data, st); err != nil {
		return nil, fmt.Errorf("azemu: state file %s is corrupt (move it away to start empty): %w", filepath.Join(dir, stateFile), err)
	}
	if st.Resources == nil {
		st.Resources = map[string]*resource{}
	}
	if st.Ops == nil {
		st.Ops = map[string]*operation{}
	}
	if st.RecentDeletes == nil {
		st.RecentDeletes = map[string]map[string]time.Time{}
	}
	if st.Principals == nil {
		st.Principals = map[string]time.Time{}
	}
	st.dir = dir
	return st, nil
}

// saveLocked writes the state atomically (no-op in memory). Caller holds s.mu.
func (s *Server) saveLocked() error {
	if s.st.dir == "" {
		return nil
	}
	data, err := json.MarshalIndent(s.st, "", " ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(s.st.dir, stateFile), data, 0o600)
}

// key is the map key of a resource id: ARM compares ids case-insensitively,
// and accepts ids written without their leading slash
// ("subscriptions/..."), as the Go SDK's arm.ParseResourceID does.
func key(id string) string {
	k := strings.ToLower(strings.TrimRight(strings.TrimSpace(id), "/"))
	if k != "" && !strings.HasPrefix(k, "/") {
		k = "/" + k
	}
	return k
}

func (s *Server) get(id string) *resource { return s.st.Resources[key(id)] }

func (s *Server) put(r *resource) { s.st.Resources[key(r.ID)] = r }

// children returns the resources directly below id of the given child type
// suffix (e.g. "/images"), sorted by id.
func (s *Server) children(parentID, childSeg string) []*resource {
	prefix := key(parentID) + strings.ToLower(childSeg) + "/"
	var out []*resource
	for k, r := range s.st.Resources {
		if strings.HasPrefix(k, prefix) && !strings.Contains(k[len(prefix):], "/") {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i].ID) < key(out[j].ID) })
	return out
}

// descendants returns every resource whose id starts with id + "/".
func (s *Server) descendants(id string) []*resource {
	prefix := key(id) + "/"
	var out []*resource
	for k, r := range s.st.Resources {
		if strings.HasPrefix(k, prefix) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return len(out[i].ID) > len(out[j].ID) })
	return out
}

// all returns resources of a type (case-insensitive) whose id starts with scope.
func (s *Server) all(typ, scope string) []*resource {
	var out []*resource
	sc := key(scope) + "/"
	for k, r := range s.st.Resources {
		if strings.EqualFold(r.Type, typ) && strings.HasPrefix(k, sc) {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return key(out[i].ID) < key(out[j].ID) })
	return out
}
