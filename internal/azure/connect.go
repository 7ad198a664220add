package azure

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// Environment variables that point imgpipe at another ARM endpoint (the
// local emulator, a sovereign cloud). `imgpipe emulator` prints them.
const (
	EnvARMEndpoint   = "IMGPIPE_ARM_ENDPOINT" // e.g. https://127.0.0.1:8443
	EnvCACert        = "IMGPIPE_CA_CERT"      // PEM bundle to trust in addition to the system roots
	EnvAuthorityHost = "AZURE_AUTHORITY_HOST" // Entra ID authority (the emulator's token endpoint)
)

// Connection says how to reach ARM. The zero value is public Azure with
// azidentity's default credential chain.
type Connection struct {
	ARMEndpoint   string
	AuthorityHost string
	CACertFile    string
}

// ConnectionFromEnv reads the connection from the environment.
func ConnectionFromEnv() Connection {
	ca := os.Getenv(EnvCACert)
	return Connection{
		ARMEndpoint:   strings.TrimRight(os.Getenv(EnvARMEndpoint), "/"),
		AuthorityHost: os.Getenv(EnvAuthorityHost),
		CACertFile:    ca,
	}
}

// Open returns the credential and client options for c. With a custom ARM
// endpoint, client-secret credentials (AZURE_TENANT_ID, AZURE_CLIENT_ID,
// AZURE_CLIENT_SECRET) are used against the given authority; otherwise
// azidentity's DefaultAzureCredential (environment, managed identity, az login).
func (c Connection) Open() (azcore.TokenCredential, *arm.ClientOptions, error) {
	co := policy.ClientOptions{Retry: ARMRetry}
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, nil, fmt.Errorf("read CA bundle %s (%s): %w", c.CACertFile, EnvCACert, err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("%s (%s) holds no PEM certificate", c.CACertFile, EnvCACert)
		}
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
		co.Transport = &http.Client{Transport: tr}
	}
	if c.ARMEndpoint != "" {
		if !strings.HasPrefix(c.ARMEndpoint, "https://") {
			return nil, nil, fmt.Errorf("%s=%q: the ARM endpoint must be https:// (the SDK refuses to send tokens over plain HTTP)", EnvARMEndpoint, c.ARMEndpoint)
		}
		authority := c.AuthorityHost
		if authority == "" {
			authority = cloud.AzurePublic.ActiveDirectoryAuthorityHost
		}
		if !strings.HasSuffix(authority, "/") {
			authority += "/"
		}
		co.Cloud = cloud.Configuration{
			ActiveDirectoryAuthorityHost: authority,
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
				cloud.ResourceManager: {Audience: "https://management.azure.com/", Endpoint: c.ARMEndpoint},
			},
		}
		tenant, id, secret := os.Getenv("AZURE_TENANT_ID"), os.Getenv("AZURE_CLIENT_ID"), os.Getenv("AZURE_CLIENT_SECRET")
		if tenant == "" || id == "" || secret == "" {
			return nil, nil, fmt.Errorf("%s is set: also set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET (imgpipe emulator prints them)", EnvARMEndpoint)
		}
		cred, err := azidentity.NewClientSecretCredential(tenant, id, secret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: co, DisableInstanceDiscovery: true,
		})
		if err != nil {
			return nil, nil, fmt.Errorf("client-secret credential: %w", err)
		}
		return cred, &arm.ClientOptions{ClientOptions: co}, nil
	}
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{ClientOptions: co})
	if err != nil {
		return nil, nil, errors.Join(errors.New("no Azure credential: set AZURE_TENANT_ID/AZURE_CLIENT_ID/AZURE_CLIENT_SECRET, use a managed identity, or run az login"), err)
	}
	return cred, &arm.ClientOptions{ClientOptions: co}, nil
}
