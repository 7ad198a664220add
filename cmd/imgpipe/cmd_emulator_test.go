package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"imgpipe/internal/azemu"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startEmulatorCLI runs `imgpipe emulator` with args until the test ends and
// returns the environment it printed as JSON.
func startEmulatorCLI(t *testing.T, args ...string) azemu.Env {
	t.Helper()
	buf := &syncBuffer{}
	old := stdout
	stdout = buf
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	root := newRootCmd()
	root.SetArgs(append([]string{"emulator", "--listen", "127.0.0.1:0", "--output", "json"}, args...))
	root.SetOut(buf)
	root.SetErr(buf)
	start := time.Now()
	go func() { done <- root.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("emulator exited with %v", err)
		}
		stdout = old
	})
	var env azemu.Env
	for {
		out := buf.String()
		if strings.Contains(out, "}") {
			if err := json.Unmarshal([]byte(out), &env); err != nil {
				t.Fatalf("output is not the JSON environment: %v\n%s", err, out)
			}
			break
		}
		select {
		case err := <-done:
			t.Fatalf("emulator exited early: %v\n%s", err, out)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Since(start) > 30*time.Second {
			t.Fatalf("emulator printed nothing in 30s: %q", out)
		}
	}
	t.Logf("emulator ready in %s", time.Since(start))
	return env
}

func TestEmulatorCommandServesTheSDK(t *testing.T) {
	state := t.TempDir()
	env := startEmulatorCLI(t, "--state", state, "--lro-delay", "100ms")
	if env.StateDir != state || env.TenantID == "" || env.ClientSecret == "" || env.SubscriptionID == "" {
		t.Fatalf("incomplete environment: %+v", env)
	}
	pem, err := os.ReadFile(env.CACertPath)
	if err != nil {
		t.Fatalf("CA certificate: %v", err)
	}
	exports, err := os.ReadFile(env.EnvFile)
	if err != nil || !strings.Contains(string(exports), "AZURE_CLIENT_SECRET="+env.ClientSecret) {
		t.Fatalf("env file: %v %q", err, exports)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool}
	defer tr.CloseIdleConnections()
	co := azcore.ClientOptions{
		Transport: &http.Client{Transport: tr},
		Cloud: cloud.Configuration{
			ActiveDirectoryAuthorityHost: env.AuthorityHost,
			Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Audience: "https://management.azure.com/", Endpoint: env.Endpoint}},
		},
	}
	cred, err := azidentity.NewClientSecretCredential(env.TenantID, env.ClientID, env.ClientSecret, &azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	rgs, err := armresources.NewResourceGroupsClient(env.SubscriptionID, cred, &arm.ClientOptions{ClientOptions: co})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rgs.CreateOrUpdate(context.Background(), "demo", armresources.ResourceGroup{Location: to.Ptr("westeurope")}, nil); err != nil {
		t.Fatalf("create resource group through the printed environment: %v", err)
	}
	// a wrong secret is refused by the token endpoint
	bad, _ := azidentity.NewClientSecretCredential(env.TenantID, env.ClientID, "wrong", &azidentity.ClientSecretCredentialOptions{ClientOptions: co, DisableInstanceDiscovery: true})
	rgsBad, _ := armresources.NewResourceGroupsClient(env.SubscriptionID, bad, &arm.ClientOptions{ClientOptions: co})
	if _, err := rgsBad.Get(context.Background(), "demo", nil); err == nil || !strings.Contains(err.Error(), "AADSTS7000215") {
		t.Fatalf("wrong secret: %v", err)
	}
}

func TestEmulatorCommandRejectsBadOptions(t *testing.T) {
	for _, args := range [][]string{
		{"--replica-policy", "sometimes"},
		{"--fault-throttle", "1.5"},
		{"--listen", "127.0.0.1:notaport"},
		{"--start-azurite", "--azurite-blob", "http://127.0.0.1:1/devstoreaccount1"},
	} {
		root := newRootCmd()
		var buf bytes.Buffer
		old := stdout
		stdout = &buf
		root.SetArgs(append([]string{"emulator"}, args...))
		root.SetOut(&buf)
		root.SetErr(&buf)
		err := root.Execute()
		stdout = old
		if err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
