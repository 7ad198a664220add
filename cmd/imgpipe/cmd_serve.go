package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/server"
	"imgpipe/internal/view"
)

func init() { register(newServeCmd) }

// oidcSecretEnv is quoted by serve's help.
const oidcSecretEnv = server.OIDCSecretEnv

func newServeCmd() *cobra.Command {
	var (
		o          server.Options
		catalogLoc string
		rec        serveReconcile // cmd_reconcile.go
	)
	cmd := &cobra.Command{Use: "serve", Short: "Serve the fleet dashboard, the HTTP API, agent intake and Prometheus metrics",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
			o.Catalog = func(ctx context.Context) (*catalog.Catalog, error) { return openCatalog(ctx, catalogLoc) }
			o.Start, o.Notes = rec.start, os.Stderr
			return server.Run(cmd.Context(), o)
		}}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8080", "address to listen on (non-loopback needs --tls-cert and --tls-key)")
	addCatalogFlag(cmd, &catalogLoc)
	f.StringVar(&o.DebugListen, "debug-listen", "", "serve Go's profiler (/debug/pprof/) on this loopback address")
	f.StringVar(&o.TLSCert, "tls-cert", "", "PEM certificate (chain) for HTTPS")
	f.StringVar(&o.TLSKey, "tls-key", "", "PEM private key for HTTPS")
	f.StringVar(&o.AgentToken, "agent-token", "", "bearer token agents must send (prefer --agent-token-file or $"+server.AgentTokenEnv+")")
	f.StringVar(&o.AgentTokenFile, "agent-token-file", "", "file holding the agent token")
	f.StringVar(&o.Channel, "channel", "prod", "channel hosts' staleness is measured against")
	f.StringArrayVar(&o.Subscriptions, "azure-subscription", nil, "pull VMs and scale sets of this subscription (repeatable)")
	durationVar(f, &o.AzureInterval, "azure-interval", 10*time.Minute, "time between Azure pulls")
	durationVar(f, &o.StaleAfter, "stale-after", 24*time.Hour, "mark hosts not heard from for this long as stale")
	a := &o.Auth
	f.StringVar(&a.OIDC.Issuer, "oidc-issuer", "", "OpenID Connect issuer people sign in with (Entra ID: https://login.microsoftonline.com/TENANT-ID/v2.0)")
	f.StringVar(&a.OIDC.ClientID, "oidc-client-id", "", "the OIDC client (Entra ID: the app registration's application id)")
	f.StringVar(&a.SecretFile, "oidc-client-secret-file", "", "file holding the OIDC client secret (or $"+oidcSecretEnv+")")
	f.StringVar(&a.OIDC.PublicURL, "public-url", "", "the URL browsers reach this server at (the redirect URI is PUBLIC-URL/auth/callback; default: from each request)")
	f.StringArrayVar(&a.OIDC.AllowedGroups, "oidc-allowed-group", nil, "admit only people with this value in their groups or roles claim (repeatable)")
	f.StringArrayVar(&a.OIDC.AllowedDomains, "oidc-allowed-domain", nil, "admit only people whose verified email or upn is in this domain (repeatable)")
	f.StringArrayVar(&a.OIDC.Scopes, "oidc-scope", nil, "scopes asked for besides openid (default profile, email; repeatable)")
	f.BoolVar(&a.RequireAuth, "require-auth", false, "ask readers for a credential on loopback too (e.g. behind a reverse proxy)")
	durationVar(f, &a.SessionLifetime, "session-lifetime", 12*time.Hour, "how long a browser session lasts after sign-in")
	rec.add(f)
	cmd.AddCommand(newServeRevokeAgentCmd(), newServeTokenCmd())
	return cmd
}

func newServeRevokeAgentCmd() *cobra.Command {
	return catalogVerb("revoke-agent HOST", "Revoke a host's agent credential (its reports are refused until it enrols again)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			if err := c.RevokeHostCredential(cmd.Context(), args[0]); err != nil {
				return err
			}
			return draw(map[string]string{"host": args[0], "credential": "revoked"},
				fmt.Sprintf("revoked the agent credential of %s; its next enrolment gets a new one\n", args[0]))
		})
}

// newServeTokenCmd: the bearer tokens programs read the fleet server with.
func newServeTokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Bearer tokens for programs that read the fleet server (create, list, revoke)"}
	var by string
	var expires time.Duration
	create := catalogVerb("create NAME", "Make a bearer token and print its secret (once)", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			secret, t, err := server.CreateBearerToken(cmd.Context(), c, args[0], whoAmI(by), expires, time.Now())
			if err != nil {
				return err
			}
			return view.TokenCreated(stdout, os.Stderr, jsonOutput(), secret, t)
		})
	durationVar(create.Flags(), &expires, "expires", 0, "the token stops working after this long (default: never)")
	create.Flags().StringVar(&by, "by", "", "who makes it (default: the current user)")
	var all bool
	list := catalogVerb("list", "List bearer tokens (names and dates, never secrets)", cobra.NoArgs,
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			ts, err := c.AccessTokens(cmd.Context(), catalog.TokenBearer, all)
			if err != nil {
				return err
			}
			return draw(ts, view.AccessTokens(ts).String())
		})
	list.Flags().BoolVar(&all, "all", false, "include revoked tokens")
	revoke := catalogVerb("revoke NAME", "Revoke a bearer token: every replica refuses it from its next request", cobra.ExactArgs(1),
		func(cmd *cobra.Command, args []string, c *catalog.Catalog) error {
			t, err := c.RevokeBearerToken(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return draw(t, fmt.Sprintf("revoked the bearer token %s\n", t.Name))
		})
	cmd.AddCommand(create, list, revoke)
	return cmd
}
