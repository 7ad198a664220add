package azemu

import (
	"net/http"
	"strings"
	"time"
)

// Role-based access control, as far as the emulator models it: which
// principals the directory knows, when a role assignment takes effect, and
// the two checks that depend on it (listKeys on a storage account, reading a
// gallery of another subscription).
//
// Sources:
//   - Propagation: "Role assignment changes are not being detected ... can
//     take up to 10 minutes" (learn.microsoft.com/azure/role-based-access-control/troubleshooting).
//     Until then requests fail with AuthorizationFailed, or
//     LinkedAuthorizationFailed for a resource referenced from the request
//     (learn.microsoft.com/azure/azure-resource-manager/troubleshooting/error-codes).
//   - New principals: "If you create a new service principal and immediately
//     try to assign a role to that service principal, that role assignment
//     can fail in some cases ... set the principalType property"
//     (learn.microsoft.com/azure/role-based-access-control/role-assignments-rest,
//     answer 400 PrincipalNotFound).
//   - listKeys: Microsoft.Storage/storageAccounts/listKeys/action is in
//     Owner, Contributor, Storage Account Contributor and Storage Account Key
//     Operator Service Role, not in Reader
//     (learn.microsoft.com/azure/role-based-access-control/built-in-roles).

// Built-in role definition GUIDs (built-in-roles page above).
const (
	roleOwner                  = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
	roleContributor            = "b24988ac-6180-42a0-ab88-20f7382dd24c"
	roleReader                 = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
	roleStorageContributor     = "17d1049b-9a84-46fb-8f53-869881c3d3ab"
	roleStorageKeyOperator     = "81a9662b-bebf-436f-a333-f67b29880f12"
	actionListKeys             = "Microsoft.Storage/storageAccounts/listKeys/action"
	actionGalleryVersionRead   = "Microsoft.Compute/galleries/images/versions/read"
	principalNotFoundFormat    = "Principal %s does not exist in the directory %s. Check that you have the correct principal ID. If you are creating this principal and then immediately assigning a role, this error might be related to a replication delay. In this case, set the role assignment principalType property to a value, such as ServicePrincipal, User, or Group.  See https://aka.ms/docs-principaltype"
	authorizationFailedFormat  = "The client '%s' with object id '%s' does not have authorization to perform action '%s' over scope '%s' or the scope is invalid. If access was recently granted, please refresh your credentials."
	linkedAuthorizationFailure = "The client '%s' with object id '%s' has permission to perform action '%s' on scope '%s'; however, it does not have permission to perform action(s) '%s' on the linked scope(s) '%s' (respectively) or the linked scope(s) are invalid."
)

var listKeysRoles = []string{roleOwner, roleContributor, roleStorageContributor, roleStorageKeyOperator}

// rbacDelay is the propagation delay in force (a negative option means none).
func (s *Server) rbacDelay() time.Duration { return max(0, s.opts.RBACDelay) }

// SetRBACDelay changes the propagation delay of a running emulator (tests).
func (s *Server) SetRBACDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.opts.RBACDelay = d
}

// AddPrincipal adds an object id to the emulated directory now, as creating
// a service principal in Microsoft Entra ID would: role assignments for it
// that do not name principalType get PrincipalNotFound until it has
// propagated (RBACDelay).
func (s *Server) AddPrincipal(objectID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.Principals[strings.ToLower(objectID)] = now()
	_ = s.saveLocked()
}

// principalVisible reports whether the directory knows a principal and has
// replicated it. Caller holds s.mu.
func (s *Server) principalVisible(id string) bool {
	id = strings.ToLower(id)
	if id == strings.ToLower(s.opts.ObjectID) {
		return true
	}
	for _, c := range s.opts.ExtraClients {
		if strings.EqualFold(c.ObjectID, id) {
			return true
		}
	}
	for _, p := range s.opts.Principals {
		if strings.EqualFold(p, id) {
			return true
		}
	}
	added, ok := s.st.Principals[id]
	return ok && !now().Before(added.Add(s.rbacDelay()))
}

// hasRole reports whether principal holds, through a role assignment that
// has propagated, one of roles (any role when roles is empty) at target or a
// scope above it. Caller holds s.mu.
func (s *Server) hasRole(target, principal string, roles ...string) bool {
	if principal == "" {
		return false
	}
	g := key(target)
	t := now()
	for _, r := range s.st.Resources {
		if !strings.EqualFold(r.Type, "Microsoft.Authorization/roleAssignments") {
			continue
		}
		if !strings.EqualFold(str(r.Body, "properties", "principalId"), principal) {
			continue
		}
		if t.Before(r.Created.Add(s.rbacDelay())) {
			continue // not propagated yet
		}
		sc := key(str(r.Body, "properties", "scope"))
		if g != sc && !strings.HasPrefix(g, sc+"/") {
			continue
		}
		if len(roles) == 0 {
			return true
		}
		rd := strings.ToLower(str(r.Body, "properties", "roleDefinitionId"))
		for _, role := range roles {
			if strings.HasSuffix(rd, "/"+role) {
				return true
			}
		}
	}
	return false
}

// hasRoleAssignment reports whether principal may read a gallery through a
// propagated role assignment. Caller holds s.mu.
func (s *Server) hasRoleAssignment(galleryID, principal string) bool {
	return s.hasRole(galleryID, principal)
}

// mainClient reports whether the request comes from the emulator's main
// client, which holds implicit Owner access in the subscription it works in
// (other subscriptions' resources need role assignments).
func (s *Server) mainClient(r *http.Request) bool {
	return strings.EqualFold(callerObjectID(s, r), s.opts.ObjectID)
}

// canListKeys reports whether the caller of a request in subscription sub
// may list the keys of account. Caller holds s.mu.
func (s *Server) canListKeys(r *http.Request, sub string, account *resource) bool {
	if s.mainClient(r) && strings.EqualFold(subOf(account.ID), sub) {
		return true
	}
	return s.hasRole(account.ID, callerObjectID(s, r), listKeysRoles...)
}

func callerClientID(s *Server, r *http.Request) string {
	tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	c, err := s.parseToken(tok)
	if err != nil {
		return ""
	}
	return c.ClientID
}

// listKeysDenied is Azure's answer to a listKeys the caller may not do:
// AuthorizationFailed when it is the request itself, LinkedAuthorizationFailed
// when the account is referenced from another resource's request.
func (s *Server) listKeysDenied(c *call, account string, linked bool) *armError {
	oid, cid := callerObjectID(s, c.r), callerClientID(s, c.r)
	if !linked {
		return errf(http.StatusForbidden, "AuthorizationFailed", authorizationFailedFormat, cid, oid, actionListKeys, account)
	}
	return errf(http.StatusForbidden, "LinkedAuthorizationFailed", linkedAuthorizationFailure, cid, oid, c.typ+"/write", c.id, actionListKeys, account)
}
