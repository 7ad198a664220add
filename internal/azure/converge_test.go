package azure

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"imgpipe/internal/azemu"
)

// startFaultEnv is startEnv with the production retry policy's retry count
// (ARMRetry), its delays shortened for a test (azemu's Retry-After is 100 ms
// in tests, and azcore honours it).
func startFaultEnv(t *testing.T) *testEnv {
	t.Helper()
	e := startEnv(t, azemu.Options{})
	co := e.emu.ClientOptions()
	co.Retry = policy.RetryOptions{MaxRetries: ARMRetry.MaxRetries, RetryDelay: 20 * time.Millisecond, MaxRetryDelay: 200 * time.Millisecond}
	ct := &countingTransport{inner: co.Transport}
	co.Transport = ct
	clients, err := NewClients(e.sub, e.emu.Credential(), co)
	if err != nil {
		t.Fatal(err)
	}
	e.pub.Clients, e.transport = clients, ct
	return e
}

// TestConvergesUnderFaults runs the fault tests on one azemu + Azurite
// with the production retry count.
func TestConvergesUnderFaults(t *testing.T) {
	e := startFaultEnv(t)
	t.Run("DestroyAt10Percent", func(t *testing.T) { testDestroyConvergesUnderFaults(t, e) })
	t.Run("PublishAt25Percent", func(t *testing.T) {
		saved := *e.pub
		defer func() { *e.pub = saved }()
		testPublishConvergesAt25Percent(t, e)
	})
}

// inGroup returns the desired state of a publish into its own resource
// group, gallery and container.
func (e *testEnv) inGroup(t *testing.T, rg string, seed byte) *Desired {
	t.Helper()
	e.rg = rg
	d := e.desired(t, e.pipeline(t, makeDisk(t, "V2", seed), "", ""))
	return d
}

// testDestroyConvergesUnderFaults: with 10% of ARM requests of each kind of
// fault (throttled, server error, dropped connection) and 10% of
// long-running operations failing midway, destroy removes the whole gallery
// on its first run. (Before, it failed on 2 of 3 first attempts: a gallery
// delete answered 429/500 or ending Failed ended the destroy.)
func testDestroyConvergesUnderFaults(t *testing.T, e *testEnv) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for seed := uint64(1); seed <= 3; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			d := e.inGroup(t, fmt.Sprint("rg-destroyfaults-", seed), byte(seed))
			if _, err := e.pub.Publish(ctx, d); err != nil {
				t.Fatal(err)
			}
			gid, _ := ParseResourceID(d.id("").GalleryID())
			start := time.Now()
			faults := azemu.Faults{Seed: seed, Throttle: 0.1, ServerError: 0.1, Drop: 0.1, LROFailure: 0.1}
			e.emu.Server.SetFaults(faults)
			// The 10% dice rarely fail one of destroy's few operations, so
			// one more is made to: the first gallery delete ends Failed
			// (the finding: a failed gallery delete ended the destroy).
			galleryDeletes := 0
			e.pub.OnEvent = func(ev Event) {
				if ev.Phase == "start" && ev.Step.Kind == KindGallery {
					galleryDeletes++
					f := faults
					f.Seed = seed*100 + uint64(galleryDeletes) // SetFaults reseeds: not the same dice again
					if galleryDeletes == 1 {
						f = azemu.Faults{Seed: seed, LROFailure: 1}
					}
					e.emu.Server.SetFaults(f)
				}
			}
			dp, err := e.pub.PlanDestroy(ctx, gid, false)
			if err == nil {
				err = e.pub.Destroy(ctx, dp)
			}
			e.pub.OnEvent = nil
			e.emu.Server.SetFaults(azemu.Faults{})
			if galleryDeletes < 2 {
				t.Errorf("the gallery delete ran %d time(s): the failed one was not tried again", galleryDeletes)
			}
			if err != nil {
				t.Fatalf("destroy under faults: %v\n%s", err, Explain(err))
			}
			if left := e.rgResources(e.rg); len(left) > 0 || e.emu.Server.Exists(gid.String()) {
				t.Fatalf("left after destroy: %v", left)
			}
			st, failed := e.transport.counts()
			t.Logf("destroyed in %v; answers so far %v, failed operations %d", time.Since(start).Round(time.Millisecond), st, failed)
		})
	}
	if st, failed := e.transport.counts(); st[429] == 0 || st[500] == 0 || failed == 0 {
		t.Errorf("the faults were not exercised: %v, %d failed operations", st, failed)
	}
}

// testPublishConvergesAt25Percent: a burst of throttling during the plan
// phase, then a quarter of ARM requests throttled or failing and a quarter
// of long-running operations failing midway: publish still converges
// (before, a read in the plan phase that outlasted azcore's retries ended
// the publish, while the same failure in the apply phase was resumed).
func testPublishConvergesAt25Percent(t *testing.T, e *testEnv) {
	e.pub.Attempts = 12
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	for seed := uint64(1); seed <= 2; seed++ {
		t.Run(fmt.Sprint("seed ", seed), func(t *testing.T) {
			d := e.inGroup(t, fmt.Sprint("rg-publish25-", seed), byte(seed))
			st := *d.Azure.Storage
			st.Container = strings.ToLower(e.rg)
			d.Azure.Storage = &st
			start := time.Now()
			// First a burst of throttling longer than azcore's retries of
			// one request last (9 tries, ~1.5 s here): the plan phase's
			// reads meet it. Then a quarter of everything fails.
			e.emu.Server.SetFaults(azemu.Faults{Seed: seed, Throttle: 1})
			burst := time.AfterFunc(3*time.Second, func() {
				e.emu.Server.SetFaults(azemu.Faults{Seed: seed, Throttle: 0.125, ServerError: 0.125, LROFailure: 0.25})
			})
			res, err := e.pub.Publish(ctx, d)
			burst.Stop()
			e.emu.Server.SetFaults(azemu.Faults{})
			if err != nil {
				t.Fatalf("publish at 25%% faults: %v\n%s", err, Explain(err))
			}
			plan, err := e.pub.Plan(ctx, d)
			if err != nil || plan.HasChanges() {
				t.Fatalf("after faults: %v\n%s", err, plan.Text())
			}
			if s := e.emu.Server.ProvisioningState(d.id("1.0.0").String()); s != "Succeeded" {
				t.Fatalf("version %s", s)
			}
			t.Logf("converged after %d attempt(s) in %v", res.Attempts, time.Since(start).Round(time.Millisecond))
		})
	}
	if st, failed := e.transport.counts(); st[429] == 0 || st[500] == 0 || failed == 0 {
		t.Errorf("the faults were not exercised: %v, %d failed operations", st, failed)
	}
}

// TestPlanRetriesTransientReads: a plan read that outlasts azcore's
// retries is read again under the Attempts policy; a permanent error is not.
func TestPlanRetriesTransientReads(t *testing.T) {
	p := &Publisher{Attempts: 4, PollInterval: time.Millisecond}
	calls := 0
	_, err := retryTransient(context.Background(), p, "read", func(context.Context) (int, error) {
		calls++
		if calls < 3 {
			return 0, respErr(429, "TooManyRequests", "GET")
		}
		return 1, nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("transient: %v after %d calls", err, calls)
	}
	calls = 0
	_, err = retryTransient(context.Background(), p, "read", func(context.Context) (int, error) {
		calls++
		return 0, respErr(403, "AuthorizationFailed", "GET")
	})
	if err == nil || calls != 1 {
		t.Fatalf("permanent: %v after %d calls", err, calls)
	}
	calls = 0
	_, err = retryTransient(context.Background(), p, "read", func(context.Context) (int, error) {
		calls++
		return 0, respErr(503, "ServiceUnavailable", "GET")
	})
	if err == nil || calls != 4 {
		t.Fatalf("exhausted: %v after %d calls, want 4", err, calls)
	}
}

// respErr is an Azure error answer as the SDK returns it.
func respErr(status int, code, method string) error {
	req, _ := http.NewRequest(method, "https://management.azure.com/x", nil)
	return &azcore.ResponseError{StatusCode: status, ErrorCode: code, RawResponse: &http.Response{StatusCode: status, Request: req}}
}
