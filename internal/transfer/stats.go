package transfer

import (
	"net/http"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Stats counts HTTP calls and attempts made through a target's clients, so
// that retries are visible in the upload summary.
type Stats struct {
	calls    atomic.Int64
	attempts atomic.Int64
}

// Retries is the number of attempts beyond the first, over all calls.
func (s *Stats) Retries() int64 {
	if s == nil {
		return 0
	}
	r := s.attempts.Load() - s.calls.Load()
	if r < 0 {
		return 0
	}
	return r
}

type countPolicy struct{ n *atomic.Int64 }

func (p countPolicy) Do(req *policy.Request) (*http.Response, error) {
	p.n.Add(1)
	return req.Next()
}

// DefaultRetry is the retry policy for data-plane calls: 408/429/5xx and
// transport errors (resets, timeouts) back off exponentially; a single try
// of a 4 MiB page gets two minutes.
var DefaultRetry = policy.RetryOptions{
	MaxRetries:    10,
	TryTimeout:    2 * time.Minute,
	RetryDelay:    500 * time.Millisecond,
	MaxRetryDelay: 30 * time.Second,
}

// clientOptions returns azcore client options that count calls and attempts
// into s and use retry (DefaultRetry when zero).
func clientOptions(s *Stats, retry policy.RetryOptions, transport policy.Transporter) azcore.ClientOptions {
	if retry.MaxRetries == 0 && retry.RetryDelay == 0 && retry.TryTimeout == 0 && retry.MaxRetryDelay == 0 {
		retry = DefaultRetry
	}
	o := azcore.ClientOptions{
		Retry:            retry,
		PerCallPolicies:  []policy.Policy{countPolicy{&s.calls}},
		PerRetryPolicies: []policy.Policy{countPolicy{&s.attempts}},
	}
	if transport != nil {
		o.Transport = transport
	}
	return o
}
