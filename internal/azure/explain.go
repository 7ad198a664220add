package azure

import (
	"cmp"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
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
	"Conflict":                   "Azure refuses the request because it conflicts with what exists (the message says what); running the command again gets the same answer",
	"AnotherOperationInProgress": "another operation is changing this resource: wait for it to finish and run the command again",
	"LinkedAuthorizationFailed":  "the identity lacks access to a resource the request refers to (a gallery version of another subscription, a storage account's keys); a role assignment made a moment ago can take up to 10 minutes to take effect",
	"InvalidResourceLocation":    "a resource of that name exists in another location: keep the location it has, or pick another name",
	"ReplicationSourceNotFound":  "the version's source is gone: publish a new version from the original disk",
	"GalleryImageNotFound":       "the definition does not exist: run imgpipe publish to create it",
	"RoleAssignmentExists":       "the principal already has this role on the gallery: nothing to do",
	"PrincipalNotFound":          "the principal_id in the share block does not exist in this tenant (or was created a moment ago): check it",
	"TooManyRequests":            "Azure is throttling: wait a few minutes and run the command again",
	"InternalServerError":        "Azure failed internally: run the command again; imgpipe resumes where it stopped",
}

// Diagnosis is an error from Azure (ARM, storage or sign-in) made readable:
// what happened and what to do. cmd/ renders it once, as text or as JSON.
type Diagnosis struct {
	// Context is what imgpipe was doing ("delete gallery gal"), if said.
	Context string `json:"context,omitempty"`
	// Code is Azure's error code (AuthorizationFailed, BlobNotFound,
	// invalid_client...), else the HTTP status text.
	Code    string   `json:"code"`
	Status  int      `json:"status,omitempty"`
	Service string   `json:"service"` // "ARM", "storage" or "Entra ID"
	Request string   `json:"request,omitempty"`
	Message string   `json:"message,omitempty"`
	Details []string `json:"details,omitempty"`
	Hint    string   `json:"hint,omitempty"`
}

// Text renders d for people, over a few lines.
func (d *Diagnosis) Text() string {
	var b strings.Builder
	if d.Context != "" {
		fmt.Fprintf(&b, "%s\n", d.Context)
	}
	switch d.Service {
	case serviceEntra:
		fmt.Fprintf(&b, "sign-in to Entra ID failed: %s", d.Code)
		if d.Status != 0 {
			fmt.Fprintf(&b, " (HTTP %d)", d.Status)
		}
	case serviceStorage:
		fmt.Fprintf(&b, "Azure Storage answered %s (HTTP %d)", d.Code, d.Status)
	default:
		if d.Status >= 200 && d.Status < 300 {
			// a long-running operation that ended Failed: the request was
			// accepted, the operation's status names the error
			fmt.Fprintf(&b, "Azure accepted the request, then the operation failed with %s", d.Code)
		} else {
			fmt.Fprintf(&b, "Azure answered %s (HTTP %d)", d.Code, d.Status)
		}
	}
	switch {
	case d.Request != "" && d.Service == serviceARM && d.Status >= 200 && d.Status < 300:
		fmt.Fprintf(&b, " (operation status %s)", d.Request)
	case d.Request != "":
		fmt.Fprintf(&b, " to %s", d.Request)
	}
	b.WriteString("\n")
	if d.Message != "" {
		fmt.Fprintf(&b, "  %s\n", d.Message)
	}
	for _, x := range d.Details {
		fmt.Fprintf(&b, "  - %s\n", x)
	}
	if d.Hint != "" {
		fmt.Fprintf(&b, "  What to do: %s\n", d.Hint)
	}
	return strings.TrimRight(b.String(), "\n")
}

const (
	serviceARM     = "ARM"
	serviceStorage = "storage"
	serviceEntra   = "Entra ID"
)

// Explain renders an error from Azure for people: the code, the status, the
// message (and nested details), the request, and what to do. Other errors
// are returned as they are.
func Explain(err error) string {
	if d := Diagnose(err); d != nil {
		return d.Text()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// Diagnose reads an ARM, storage or sign-in error out of err's chain; nil
// when err holds none.
func Diagnose(err error) *Diagnosis {
	if err == nil {
		return nil
	}
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		return diagnoseSignIn(err, af)
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		if unavailableCredential(err) {
			return &Diagnosis{Context: outerContext(err, nil), Code: "CredentialUnavailable", Service: serviceEntra,
				Message: firstLine(err.Error()), Hint: hintNoCredential}
		}
		return nil
	}
	d := &Diagnosis{Context: outerContext(err, re), Code: re.ErrorCode, Status: re.StatusCode, Service: serviceARM, Request: requestLine(re)}
	if isStorage(re) {
		d.Service = serviceStorage
	}
	if re.RawResponse != nil {
		if body, err := runtime.Payload(re.RawResponse); err == nil && len(body) > 0 {
			if d.Service == serviceStorage {
				var x storageErrorBody
				if xml.Unmarshal(body, &x) == nil && x.Code != "" {
					d.Code = cmp.Or(d.Code, x.Code)
					d.Message = storageMessage(x.Message)
					if x.AuthenticationErrorDetail != "" {
						d.Details = append(d.Details, storageMessage(x.AuthenticationErrorDetail))
					}
				}
			} else {
				var detail *azureErrorDetail
				var env azureErrorBody
				if json.Unmarshal(body, &env) == nil && env.Error != nil {
					detail = env.Error
				} else {
					var x azureErrorDetail // an LRO status body nests the error the same way
					if json.Unmarshal(body, &x) == nil && x.Code != "" {
						detail = &x
					}
				}
				if detail != nil {
					d.Code = cmp.Or(d.Code, detail.Code)
					d.Message = detail.Message
					for _, x := range detail.Details {
						d.Details = append(d.Details, x.Code+": "+x.Message)
					}
				}
			}
		}
	}
	if d.Code == "" {
		d.Code = http.StatusText(re.StatusCode)
	}
	d.Hint = cmp.Or(conflictHint(d.Code, d.Message), hints[d.Code])
	if d.Service == serviceStorage {
		d.Hint = cmp.Or(storageHints[d.Code], d.Hint)
	}
	if d.Service == serviceStorage && sharedKey(re) && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden) {
		d.Hint = storageHints["SharedKeyRefused"]
	}
	if d.Hint == "" {
		switch {
		case d.Service == serviceStorage && (re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden):
			d.Hint = storageHints["AuthorizationFailure"]
		case re.StatusCode == http.StatusUnauthorized:
			d.Hint = hints["InvalidAuthenticationToken"]
		case re.StatusCode == http.StatusForbidden:
			d.Hint = hints["AuthorizationFailed"]
		case re.StatusCode == http.StatusTooManyRequests:
			d.Hint = hints["TooManyRequests"]
		case re.StatusCode >= 500:
			d.Hint = hints["InternalServerError"]
		}
	}
	return d
}

// outerContext is the text wrapped around the Azure error, if any.
func outerContext(err, inner error) string {
	outer := err.Error()
	if inner == nil {
		return ""
	}
	if outer != inner.Error() {
		if i := strings.Index(outer, inner.Error()); i > 0 {
			return strings.TrimRight(strings.TrimSpace(outer[:i]), ":")
		}
	}
	return ""
}

// storageErrorBody is Azure Storage's XML error.
type storageErrorBody struct {
	Code                      string `xml:"Code"`
	Message                   string `xml:"Message"`
	AuthenticationErrorDetail string `xml:"AuthenticationErrorDetail"`
}

// storageMessage drops the RequestId and Time lines storage appends.
func storageMessage(m string) string {
	var keep []string
	for _, l := range strings.Split(m, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "RequestId:") || strings.HasPrefix(l, "Time:") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, " ")
}

// isStorage reports whether the failed request went to a storage (blob)
// endpoint rather than to ARM.
func isStorage(re *azcore.ResponseError) bool {
	if re.RawResponse == nil {
		return false
	}
	if re.RawResponse.Header.Get("x-ms-error-code") != "" && !strings.Contains(re.RawResponse.Header.Get("Content-Type"), "json") {
		return true
	}
	if req := re.RawResponse.Request; req != nil && req.URL != nil {
		return strings.Contains(req.URL.Host, ".blob.") || (!strings.HasPrefix(req.URL.Path, "/subscriptions/") && req.URL.Path != "" &&
			strings.Contains(re.RawResponse.Header.Get("Content-Type"), "xml"))
	}
	return false
}

// sharedKey reports whether the refused storage request was signed with an
// account key (rather than an Entra ID token).
func sharedKey(re *azcore.ResponseError) bool {
	r := re.RawResponse
	return r != nil && r.Request != nil && strings.HasPrefix(r.Request.Header.Get("Authorization"), "SharedKey ")
}

// storageHints say what to do about the storage error codes users meet.
var storageHints = map[string]string{
	"AuthenticationFailed":            "the storage account key or token was refused: check AZURE_STORAGE_KEY (shared key) or unset it to use Entra ID",
	"SharedKeyRefused":                "the storage account refused the shared key: check that AZURE_STORAGE_KEY is the current key of the account named in the pipeline file (keys are rotated), or unset it to use Entra ID",
	"AuthorizationFailure":            "the identity may not write blobs here: grant it Storage Blob Data Contributor on the account (roles take minutes to apply), or use AZURE_STORAGE_KEY",
	"AuthorizationPermissionMismatch": "the identity lacks a data role on the account: grant it Storage Blob Data Contributor (roles take minutes to apply), or use AZURE_STORAGE_KEY",
	"ContainerNotFound":               "the container does not exist: check storage.container in the pipeline file (publish creates it)",
	"BlobNotFound":                    "the blob does not exist (or was removed): publish uploads it again",
	"InvalidBlobType":                 "a blob of another type (block/append) has this name: remove it or pick another name",
	"LeaseIdMissing":                  "another upload holds a lease on the blob: wait for it, or break the lease",
	"ServerBusy":                      "the storage account is throttling: wait and run the command again; uploads resume",
}

const hintNoCredential = "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET, use a managed identity, or run az login (for the emulator: source the environment imgpipe emulator prints)"

// diagnoseSignIn renders a token request Entra ID refused.
func diagnoseSignIn(err error, af *azidentity.AuthenticationFailedError) *Diagnosis {
	d := &Diagnosis{Context: outerContext(err, af), Service: serviceEntra, Code: "AuthenticationFailed", Hint: hintNoCredential}
	if r := af.RawResponse; r != nil {
		d.Status = r.StatusCode
		if r.Request != nil && r.Request.URL != nil {
			d.Request = r.Request.Method + " " + r.Request.URL.Path
		}
		if body, err := runtime.Payload(r); err == nil {
			var b struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(body, &b) == nil && b.Error != "" {
				d.Code, d.Message = b.Error, firstLine(b.Description)
			}
		}
	}
	switch d.Code {
	case "invalid_client", "unauthorized_client":
		d.Hint = "the client id or secret was refused: check AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (a secret expires; make a new one)"
	case "invalid_request", "invalid_tenant":
		d.Hint = "check AZURE_TENANT_ID (the directory the app registration lives in)"
	}
	return d
}

// unavailableCredential: no credential in the chain could even try.
func unavailableCredential(err error) bool {
	m := err.Error()
	return strings.Contains(m, "DefaultAzureCredential: failed to acquire a token") || strings.Contains(m, "no Azure credential:")
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		return strings.TrimSpace(s[:i])
	}
	return s
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

// conflictHint renders what a Conflict is about, read from Azure's message:
// Azure answers several different refusals with the code Conflict, none of
// them a concurrent change, and none that a retry cures (isPermanent).
func conflictHint(code, msg string) string {
	if code != "Conflict" {
		return ""
	}
	m := strings.ToLower(msg)
	switch {
	case strings.Contains(m, "hypervisor generation"):
		return "the source's Hyper-V generation differs from the definition's, and a definition's generation cannot change: " +
			"publish to a definition of the source's generation (a new definition name with hyperv_generation set to it), or build the image for the definition's generation. imgpipe does not retry this"
	case strings.Contains(m, "os type"):
		return "the source's OS type differs from the definition's: fix os_type in the image block or publish to another definition"
	case strings.Contains(m, "publisher") && strings.Contains(m, "offer") && strings.Contains(m, "sku"):
		return "another definition of the gallery has this publisher/offer/sku: set publisher, offer or sku in the image block to a combination of its own"
	case strings.Contains(m, "not unique within the subscription"):
		return "gallery names are unique per subscription: another resource group of the subscription has a gallery of this name; pick another gallery name"
	}
	return ""
}
