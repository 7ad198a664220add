// Package azemutest starts the azemu ARM emulator in-process for tests and
// hands out what the unmodified Azure SDK needs to talk to it.
//
//	env := azemutest.Start(t, azemu.Options{})
//	client, _ := armcompute.NewGalleriesClient(env.SubscriptionID, env.Credential(), env.ClientOptions())
package azemutest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"

	"imgpipe/internal/azemu"
	"imgpipe/internal/testenv"
)

// Env is a running emulator.
type Env struct {
	Server         *azemu.Server
	SubscriptionID string
	// Azurite is set by StartWithAzurite.
	Azurite *testenv.Azurite

	client *http.Client
	cred   azcore.TokenCredential
}

// Test-friendly defaults for Options fields left zero: operations take a
// fraction of a second (pollers still poll), Retry-After is sent in
// milliseconds, replication takes a second, role assignments propagate in
// a fraction of a second.
const (
	TestLRODelay             = 200 * time.Millisecond
	TestRetryAfter           = 100 * time.Millisecond
	TestReplicationDuration  = time.Second
	TestDeleteConflictWindow = 500 * time.Millisecond
	TestRBACDelay            = 300 * time.Millisecond
)

// DefaultSubscriptionID is the subscription Env.SubscriptionID names (and
// the one the blob service's storage account is registered in). Any
// well-formed subscription id is accepted by the emulator.
const DefaultSubscriptionID = azemu.DefaultSubscriptionID

// Start starts an emulator on 127.0.0.1:random, stopped by t.Cleanup.
func Start(t testing.TB, opts azemu.Options) *Env {
	t.Helper()
	if opts.LRODelay == 0 {
		opts.LRODelay = TestLRODelay
	}
	if opts.RetryAfter == 0 {
		opts.RetryAfter = TestRetryAfter
	}
	if opts.ReplicationDuration == 0 {
		opts.ReplicationDuration = TestReplicationDuration
	}
	if opts.DeleteConflictWindow == 0 {
		opts.DeleteConflictWindow = TestDeleteConflictWindow
	}
	if opts.RBACDelay == 0 {
		opts.RBACDelay = TestRBACDelay
	}
	s, err := azemu.New(opts)
	if err != nil {
		t.Fatalf("azemu: %v", err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatalf("azemu: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(s.CACertPEM()) {
		t.Fatal("azemu: bad CA certificate")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	t.Cleanup(tr.CloseIdleConnections)
	env := &Env{Server: s, SubscriptionID: DefaultSubscriptionID, client: &http.Client{Transport: tr}}
	o := s.Options()
	cred, err := azidentity.NewClientSecretCredential(o.TenantID, o.ClientID, o.ClientSecret, &azidentity.ClientSecretCredentialOptions{
		ClientOptions:            env.clientOptions(),
		DisableInstanceDiscovery: true,
	})
	if err != nil {
		t.Fatalf("azemu: credential: %v", err)
	}
	env.cred = cred
	return env
}

// StartWithAzurite starts Azurite (testenv.StartAzurite) and an emulator
// whose blob service is that Azurite.
func StartWithAzurite(t testing.TB, opts azemu.Options) *Env {
	t.Helper()
	az := testenv.StartAzurite(t)
	opts.Storage.BlobEndpoint = az.BlobEndpoint
	opts.Storage.AccountName = az.AccountName
	opts.Storage.AccountKey = az.AccountKey
	env := Start(t, opts)
	env.Azurite = az
	return env
}

// StorageAccountID is the resource id of the storage account the blob
// service (Azurite) belongs to (resource group azemu.DefaultStorageResourceGroup
// in DefaultSubscriptionID, location azemu.DefaultStorageLocation unless the
// options said otherwise).
func (e *Env) StorageAccountID() string { return e.Server.StorageAccountID() }

func (e *Env) clientOptions() azcore.ClientOptions {
	return azcore.ClientOptions{
		Cloud:     e.Server.Cloud(),
		Transport: e.client,
		Retry: policy.RetryOptions{
			MaxRetries:    8,
			RetryDelay:    20 * time.Millisecond,
			MaxRetryDelay: 300 * time.Millisecond,
		},
	}
}

// ClientOptions point an ARM client at the emulator, trusting its
// certificate, with a fast retry policy.
func (e *Env) ClientOptions() *arm.ClientOptions {
	return &arm.ClientOptions{ClientOptions: e.clientOptions()}
}

// Credential is a real azidentity.ClientSecretCredential against the
// emulator's token endpoint.
func (e *Env) Credential() azcore.TokenCredential { return e.cred }

// HTTPClient trusts the emulator's certificate (for raw requests).
func (e *Env) HTTPClient() *http.Client { return e.client }

// Token returns a bearer token for raw requests.
func (e *Env) Token(t testing.TB) string {
	t.Helper()
	tok, err := e.cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://management.azure.com/.default"}})
	if err != nil {
		t.Fatalf("azemu token: %v", err)
	}
	return tok.Token
}
