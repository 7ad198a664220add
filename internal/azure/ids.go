package azure

import (
	"fmt"
	"strings"

	"github.com/google/uuid"
)

// ResourceID is a parsed ARM id of a gallery, definition, version or managed image.
type ResourceID struct {
	Subscription  string
	ResourceGroup string
	Gallery       string
	Definition    string
	Version       string
	Image         string // managed image name
}

// Kind is "gallery", "definition", "version" or "image".
func (r ResourceID) Kind() string {
	switch {
	case r.Image != "":
		return "image"
	case r.Version != "":
		return "version"
	case r.Definition != "":
		return "definition"
	case r.Gallery != "":
		return "gallery"
	}
	return ""
}

func (r ResourceID) String() string {
	base := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Compute", r.Subscription, r.ResourceGroup)
	switch r.Kind() {
	case "image":
		return base + "/images/" + r.Image
	case "gallery":
		return base + "/galleries/" + r.Gallery
	case "definition":
		return base + "/galleries/" + r.Gallery + "/images/" + r.Definition
	case "version":
		return base + "/galleries/" + r.Gallery + "/images/" + r.Definition + "/versions/" + r.Version
	}
	return base
}

// GalleryID is the id of the gallery holding r.
func (r ResourceID) GalleryID() string {
	return ResourceID{Subscription: r.Subscription, ResourceGroup: r.ResourceGroup, Gallery: r.Gallery}.String()
}

// DefinitionID is the id of the definition holding r.
func (r ResourceID) DefinitionID() string {
	return ResourceID{Subscription: r.Subscription, ResourceGroup: r.ResourceGroup, Gallery: r.Gallery, Definition: r.Definition}.String()
}

// ParseResourceID parses the ARM id of a gallery, definition, version or
// managed image (case-insensitive keywords, as ARM compares them).
func ParseResourceID(id string) (ResourceID, error) {
	bad := func(why string) (ResourceID, error) {
		return ResourceID{}, fmt.Errorf("%q is not a gallery, definition, version or managed image id (%s); expected /subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/galleries/G[/images/D[/versions/V]]", id, why)
	}
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) < 8 || len(parts)%2 != 0 {
		return bad("wrong number of segments")
	}
	var r ResourceID
	if !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourceGroups") ||
		!strings.EqualFold(parts[4], "providers") || !strings.EqualFold(parts[5], "Microsoft.Compute") {
		return bad("not a Microsoft.Compute resource")
	}
	r.Subscription, r.ResourceGroup = strings.ToLower(parts[1]), parts[3]
	rest := parts[6:]
	switch {
	case strings.EqualFold(rest[0], "images") && len(rest) == 2:
		r.Image = rest[1]
	case strings.EqualFold(rest[0], "galleries"):
		r.Gallery = rest[1]
		if len(rest) >= 4 {
			if !strings.EqualFold(rest[2], "images") {
				return bad("expected images after the gallery")
			}
			r.Definition = rest[3]
		}
		if len(rest) == 6 {
			if !strings.EqualFold(rest[4], "versions") {
				return bad("expected versions after the definition")
			}
			r.Version = rest[5]
		}
		if len(rest) > 6 {
			return bad("too many segments")
		}
	default:
		return bad("unknown resource type " + rest[0])
	}
	for _, s := range []string{r.Subscription, r.ResourceGroup, r.Gallery, r.Definition, r.Version, r.Image} {
		if strings.ContainsAny(s, "?#") {
			return bad("invalid character")
		}
	}
	return r, nil
}

// SameID compares two ARM ids as ARM does (case-insensitively).
func SameID(a, b string) bool {
	return strings.EqualFold(strings.TrimRight(a, "/"), strings.TrimRight(b, "/"))
}

// ReaderRoleID is the built-in Reader role definition.
const readerRoleGUID = "acdd72a7-3385-48ef-bd42-f606fba81ae7"

// ReaderRoleDefinitionID is the subscription-scoped id of the built-in Reader role.
func ReaderRoleDefinitionID(subscription string) string {
	return "/subscriptions/" + subscription + "/providers/Microsoft.Authorization/roleDefinitions/" + readerRoleGUID
}

// roleAssignmentName is deterministic, so creating it again is a no-op
// (idempotent share) and a killed run never leaves a second assignment.
func roleAssignmentName(scope, principal, role string) string {
	return uuid.NewSHA1(uuid.NameSpaceURL, []byte(strings.ToLower(scope+"|"+principal+"|"+role))).String()
}
