package azure

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
)

// Consistency is the bounded retry for Azure's eventual consistency, the one
// thing azcore's retry policy cannot see: ARM keeps answering 409
// CannotDeleteResource for a while after the last child was deleted, and a
// child PUT may get 404 (parent not found) right after its parent was made.
// Everything else (429, 5xx, resets) is azcore's job and is not retried here.
type Consistency struct {
	Window  time.Duration // total time to keep trying; default 3 minutes
	Initial time.Duration // first back-off; default 1 s (doubles up to Max)
	Max     time.Duration // default 15 s
}

func (c Consistency) withDefaults() Consistency {
	if c.Window <= 0 {
		c.Window = 3 * time.Minute
	}
	if c.Initial <= 0 {
		c.Initial = time.Second
	}
	if c.Max <= 0 {
		c.Max = 15 * time.Second
	}
	return c
}

// isConsistencyLag reports whether err is one of the answers that mean
// "ARM has not caught up yet".
func isConsistencyLag(err error) bool {
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	switch {
	case re.StatusCode == http.StatusConflict && re.ErrorCode == "CannotDeleteResource":
		return true
	case re.StatusCode == http.StatusNotFound && re.ErrorCode == "ParentResourceNotFound":
		return true
	case re.StatusCode == http.StatusNotFound && re.RawResponse != nil && re.RawResponse.Request != nil &&
		(re.RawResponse.Request.Method == http.MethodPut || re.RawResponse.Request.Method == http.MethodPatch) &&
		re.ErrorCode != "ResourceGroupNotFound" && re.ErrorCode != "SubscriptionNotFound":
		// a child PUT answered "not found": its parent, created a moment ago, is not visible yet
		return true
	}
	return false
}

// do runs op until it succeeds, fails for another reason, or the window ends
// (then the last error is returned, wrapped with what was being done).
func (c Consistency) do(ctx context.Context, what string, op func(context.Context) error) error {
	c = c.withDefaults()
	deadline := time.Now().Add(c.Window)
	wait := c.Initial
	for attempt := 1; ; attempt++ {
		err := op(ctx)
		if err == nil || !isConsistencyLag(err) {
			return err
		}
		if time.Now().Add(wait).After(deadline) {
			return fmt.Errorf("%s: Azure still answered this after %s of retrying (eventual consistency window exceeded; run the command again): %w", what, c.Window, err)
		}
		slog.Info("azure: eventual consistency, retrying", "what", what, "attempt", attempt, "wait", wait, "err", shortErr(err))
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		wait *= 2
		if wait > c.Max {
			wait = c.Max
		}
	}
}

// shortErr is a one-line form of an Azure error for logs.
func shortErr(err error) string {
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		return fmt.Sprintf("%d %s", re.StatusCode, re.ErrorCode)
	}
	return err.Error()
}

// isNotFound reports a 404 answer.
func isNotFound(err error) bool {
	var re *azcore.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusNotFound
}

// permanentCodes are Azure error codes that answer the request itself, not
// the moment it was sent: running it again gets the same answer, so nothing
// retries them — not azcore, not the consistency retry, not a fresh attempt
// of the publish. They matter for long-running operations, whose failure
// arrives with the status of the last poll (200) and the operation's code:
// "Conflict" there is Azure's answer to a source whose Hyper-V generation
// differs from the definition's (the resource with id ... has a different
// Hypervisor generation ['V2'] than the parent gallery image Hypervisor
// generation ['V1'], MicrosoftDocs/azure-docs#118774), or to an OS type
// mismatch or an identifier clash — never a concurrent change (that one is
// AnotherOperationInProgress, which is retried).
var permanentCodes = map[string]bool{
	"Conflict": true, "InvalidParameter": true, "BadRequest": true, "PropertyChangeNotAllowed": true,
	"OperationNotAllowed": true, "InvalidResourceLocation": true, "LinkedAuthorizationFailed": true,
	"AuthorizationFailed": true, "PrincipalNotFound": true, "InvalidRequestContent": true,
	"ResourceNotFound": true, "NotFound": true, "GalleryImageNotFound": true, "ReplicationSourceNotFound": true,
	"InvalidAuthenticationToken": true, "LocationNotAvailableForResourceType": true, "InvalidApiVersionParameter": true,
	"NoRegisteredProviderFound": true, "StorageAccountAlreadyTaken": true, "AccountNameInvalid": true,
}

// transientCodes are 4xx answers that mean "not now" (ARM's own words for
// throttling and concurrent operations).
var transientCodes = map[string]bool{
	"AnotherOperationInProgress": true, "OperationPreempted": true, "RetryableError": true, "TooManyRequests": true,
}

// isPermanent is the one classification of Azure failures (see
// permanentCodes): a PlanError, a 4xx answer other than throttling, a
// timeout, a concurrent operation and the eventual-consistency lags
// (isConsistencyLag), and a long-running operation that failed with a
// permanent code. Callers that retry (Apply's fresh attempts, the
// plan-phase reads) retry only what is not permanent.
func isPermanent(err error) bool {
	var pe *PlanError
	if errors.As(err, &pe) {
		return true
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		return false
	}
	if transientCodes[re.ErrorCode] || isConsistencyLag(err) {
		return false
	}
	if permanentCodes[re.ErrorCode] {
		return true
	}
	return re.StatusCode >= 400 && re.StatusCode < 500 && re.StatusCode != http.StatusRequestTimeout && re.StatusCode != http.StatusTooManyRequests
}

// isTransient reports failures a fresh attempt of the whole publish may cure:
// a long-running operation that ended Failed/Canceled with a code that is not
// permanent, or a 5xx/429 that outlasted azcore's own retries.
func isTransient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if isPermanent(err) {
		return false
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		if re.StatusCode == http.StatusTooManyRequests || re.StatusCode >= 500 || transientCodes[re.ErrorCode] {
			return true
		}
		// LRO failures surface with the status of the last poll (200) and
		// the operation's error code.
		if re.StatusCode == http.StatusOK || re.StatusCode == http.StatusAccepted || re.StatusCode == http.StatusCreated {
			return true
		}
		return isConsistencyLag(err)
	}
	var ve *versionFailedError
	if errors.As(err, &ve) {
		return true
	}
	// connection-level errors (resets) that outlasted azcore's retries
	var ne interface{ Timeout() bool }
	return errors.As(err, &ne)
}
