package azemu

import (
	"sort"
	"strings"
)

// State inspection for tests. Real Azure exposes none of this; tests use it
// to check what the emulator recorded (for example the content a copy was
// made from), never to drive the code under test.

// Fingerprint returns the content fingerprint recorded for a managed image,
// gallery image version or disk when it was created.
func (s *Server) Fingerprint(id string) (Fingerprint, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.get(id)
	if r == nil || r.Fingerprint == nil {
		return Fingerprint{}, false
	}
	return *r.Fingerprint, true
}

// SourceID returns the source recorded for a gallery image version.
func (s *Server) SourceID(versionID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.get(versionID)
	if r == nil {
		return "", false
	}
	return r.SourceID, true
}

// Exists reports whether a resource exists (in any provisioning state).
func (s *Server) Exists(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	return s.get(id) != nil
}

// ResourceIDs lists every resource id, sorted, optionally filtered by type
// (case-insensitive, e.g. "Microsoft.Compute/galleries"); empty means all.
func (s *Server) ResourceIDs(typ string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	var out []string
	for _, r := range s.st.Resources {
		if typ == "" || strings.EqualFold(r.Type, typ) {
			out = append(out, r.ID)
		}
	}
	sort.Strings(out)
	return out
}

// ProvisioningState returns properties.provisioningState of a resource.
func (s *Server) ProvisioningState(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.tick()
	r := s.get(id)
	if r == nil {
		return ""
	}
	return str(r.Body, "properties", "provisioningState")
}
