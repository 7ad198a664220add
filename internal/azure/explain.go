package azure

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// azureErrorBody is ARM's standard error envelope.
type azureErrorBody struct {
	Error *azureErrorDetail `json:"error"`
}

type azureErrorDetail struct {
	Code    string             `json:"code"`
	Message string             `json:"message"`
	Target  string             `json:"target"`
	Details []azureErrorDetail `json:"details"`
}

// hints say what to do about the error codes users meet.
var hints = map[string]string{
	"CannotDeleteResource":       "delete what is nested inside it first (versions, then definitions, then the gallery): `imgpipe destroy` does this in order, and retries while Azure catches up",
	"PropertyChangeNotAllowed":   "this property cannot change once the resource exists: fix the pipeline file to match Azure, or publish to a new definition",
	"ResourceGroupNotFound":      "create the resource group, or fix resource_group in the pipeline file (imgpipe publish creates it)",
	"ResourceNotFound":           "the resource does not exist (or not yet): check the name, subscription and resource group",
	"ParentResourceNotFound":     "its parent does not exist (or Azure has not caught up yet): run the command again, or create the parent first",
	"AuthorizationFailed":        "the identity imgpipe runs as lacks permission: grant it Contributor on the resource group (and User Access Administrator to share)",
	"InvalidAuthenticationToken": "sign-in failed: check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (or az login)",
	"OperationNotAllowed":        "Azure does not allow this in the resource's current state; the message says why",
	"InvalidParameter":           "a value Azure rejected: the message names it; check the pipeline file",
	"BadRequest":                 "Azure rejected the request: check the values named in the message",
	"Conflict":                   "another operation is changing this resource: wait for it to finish and run the command again",
	"ReplicationSourceNotFound":  "the version's source is gone: publish a new version from the original disk",
	"GalleryImageNotFound":       "the definition does not exist: run imgpipe publish to create it",
	"RoleAssignmentExists":       "the principal already has this role on the gallery: nothing to do",
	"PrincipalNotFound":          "the principal_id in the share block does not exist in this tenant (or was created a moment ago): check it",
	"TooManyRequests":            "Azure is throttling: wait a few minutes and run the command again",
	"InternalServerError":        "Azure failed internally: run the command again; imgpipe resumes where it stopped",
}

// Explain renders an error from Azure for people: the code, the status, the
// message (and nested details), the request, and what to do. Other errors
// are returned as they are.
func Explain(err error) string {
	if err == nil {
		return ""
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return err.Error()
	}
	var b strings.Builder
	// The context added around the Azure error, if any.
	if outer := err.Error(); outer != re.Error() {
		if i := strings.Index(outer, re.Error()); i > 0 {
			fmt.Fprintf(&b, "%s\n", strings.TrimRight(strings.TrimSpace(outer[:i]), ":"))
		}
	}
	code := re.ErrorCode
	var detail *azureErrorDetail
	if re.RawResponse != nil {
		if body, err := runtime.Payload(re.RawResponse); err == nil && len(body) > 0 {
			var env azureErrorBody
			if json.Unmarshal(body, &env) == nil && env.Error != nil {
				detail = env.Error
			} else {
				var d azureErrorDetail // an LRO status body nests the error the same way
				if json.Unmarshal(body, &d) == nil && d.Code != "" {
					detail = &d
				}
			}
		}
	}
	if code == "" && detail != nil {
		code = detail.Code
	}
	if code == "" {
		code = http.StatusText(re.StatusCode)
	}
	fmt.Fprintf(&b, "Azure answered %s (HTTP %d)", code, re.StatusCode)
	if req := requestLine(re); req != "" {
		fmt.Fprintf(&b, " to %s", req)
	}
	b.WriteString("\n")
	if detail != nil && detail.Message != "" {
		fmt.Fprintf(&b, "  %s\n", detail.Message)
		for _, d := range detail.Details {
			fmt.Fprintf(&b, "  - %s: %s\n", d.Code, d.Message)
		}
	}
	hint := hints[code]
	if hint == "" {
		switch {
		case re.StatusCode == http.StatusUnauthorized:
			hint = hints["InvalidAuthenticationToken"]
		case re.StatusCode == http.StatusForbidden:
			hint = hints["AuthorizationFailed"]
		case re.StatusCode == http.StatusTooManyRequests:
			hint = hints["TooManyRequests"]
		case re.StatusCode >= 500:
			hint = hints["InternalServerError"]
		}
	}
	if hint != "" {
		fmt.Fprintf(&b, "  What to do: %s\n", hint)
	}
	return strings.TrimRight(b.String(), "\n")
}

// requestLine is "METHOD path" of the failed request, without the query
// (which may carry a SAS) and without the host.
func requestLine(re *azcore.ResponseError) string {
	if re.RawResponse == nil || re.RawResponse.Request == nil || re.RawResponse.Request.URL == nil {
		return ""
	}
	u := *re.RawResponse.Request.URL
	p := u.Path
	if p == "" {
		p = "/"
	}
	if q, err := url.ParseQuery(u.RawQuery); err == nil && q.Get("api-version") != "" && !strings.Contains(p, "/operations/") {
		p += "?api-version=" + q.Get("api-version")
	}
	return re.RawResponse.Request.Method + " " + p
}
