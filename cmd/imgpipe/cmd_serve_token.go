package main

import (
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/server"
	"imgpipe/internal/view"
)

// Who may read the fleet server: serve's sign-in flags and the token verbs.

const oidcSecretEnv = "IMGPIPE_OIDC_CLIENT_SECRET"

type serveAuthFlags struct {
	oidc            server.OIDCConfig
	secretFile      string
	requireAuth     bool
	sessionLifetime time.Duration
}

// addServeAuth adds serve's sign-in flags and 'serve token'.
func addServeAuth(cmd *cobra.Command) *serveAuthFlags {
	a := &serveAuthFlags{}
	f := cmd.Flags()
	f.StringVar(&a.oidc.Issuer, "oidc-issuer", "", "OpenID Connect issuer people sign in with (Entra ID: https://login.microsoftonline.com/TENANT-ID/v2.0)")
	f.StringVar(&a.oidc.ClientID, "oidc-client-id", "", "the OIDC client (Entra ID: the app registration's application id)")
	f.StringVar(&a.secretFile, "oidc-client-secret-file", "", "file holding the OIDC client secret (or $"+oidcSecretEnv+")")
	f.StringVar(&a.oidc.PublicURL, "public-url", "", "the URL browsers reach this server at (the redirect URI is PUBLIC-URL/auth/callback; default: from each request)")
	f.StringArrayVar(&a.oidc.AllowedGroups, "oidc-allowed-group", nil, "admit only people with this value in their groups or roles claim (repeatable)")
	f.StringArrayVar(&a.oidc.AllowedDomains, "oidc-allowed-domain", nil, "admit only people whose verified email or upn is in this domain (repeatable)")
	f.StringArrayVar(&a.oidc.Scopes, "oidc-scope", nil, "scopes asked for besides openid (default profile, email; repeatable)")
	f.BoolVar(&a.requireAuth, "require-auth", false, "ask readers for a credential on loopback too (e.g. behind a reverse proxy)")
	durationVar(f, &a.sessionLifetime, "session-lifetime", 12*time.Hour, "how long a browser session lasts after sign-in")
	cmd.AddCommand(newServeTokenCmd())
	return a
}

// config is the server's AuthConfig for a server listening on listen.
func (a *serveAuthFlags) config(listen string) (server.AuthConfig, error) {
	ac := server.AuthConfig{SessionLifetime: a.sessionLifetime}
	if a.oidc.Issuer != "" || a.oidc.ClientID != "" {
		secret, err := readToken("", a.secretFile, oidcSecretEnv, true)
		if err != nil {
			return ac, err
		}
		o := a.oidc
		o.ClientSecret = secret
		ac.OIDC = &o
	}
	ac.Required = server.AuthRequired(listen, ac.OIDC != nil, a.requireAuth)
	if ac.Required {
		how := "a bearer token (imgpipe serve token create)"
		if ac.OIDC != nil {
			how += " or sign-in with " + ac.OIDC.Issuer
		}
		fmt.Fprintf(os.Stderr, "imgpipe serve: reading needs %s\n", how)
	}
	return ac, nil
}

func newServeTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Bearer tokens for programs that read the fleet server (create, list, revoke)",
	}
	cmd.AddCommand(newServeTokenCreateCmd(), newServeTokenListCmd(), newServeTokenRevokeCmd())
	return cmd
}

func newServeTokenCreateCmd() *cobra.Command {
	var (
		catalogLoc, by string
		expires        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "create NAME",
		Short: "Make a bearer token and print its secret (once)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				secret, t, err := server.CreateBearerToken(cmd.Context(), c, args[0], whoAmI(by), expires, time.Now())
				if err != nil {
					return err
				}
				if jsonOutput() {
					return printJSON(struct {
						catalog.AccessToken
						Secret string `json:"secret"`
					}{t, secret})
				}
				fmt.Fprintln(stdout, secret)
				fmt.Fprintf(os.Stderr, "token %s made (%s); the secret above is shown only now\n", t.Name, expiry(t))
				return nil
			})
		},
	}
	addCatalogFlag(cmd, &catalogLoc)
	durationVar(cmd.Flags(), &expires, "expires", 0, "the token stops working after this long (default: never)")
	cmd.Flags().StringVar(&by, "by", "", "who makes it (default: the current user)")
	return cmd
}

func expiry(t catalog.AccessToken) string {
	if t.ExpiresAt.IsZero() {
		return "never expires"
	}
	return "expires " + t.ExpiresAt.UTC().Format(time.RFC3339)
}

func newServeTokenListCmd() *cobra.Command {
	var (
		catalogLoc string
		all        bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List bearer tokens (names and dates, never secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				ts, err := c.AccessTokens(cmd.Context(), catalog.TokenBearer, all)
				if err != nil {
					return err
				}
				return draw(ts, view.AccessTokens(ts).String())
			})
		},
	}
	addCatalogFlag(cmd, &catalogLoc)
	cmd.Flags().BoolVar(&all, "all", false, "include revoked tokens")
	return cmd
}

func newServeTokenRevokeCmd() *cobra.Command {
	var catalogLoc string
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke a bearer token: every replica refuses it from its next request",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(c *catalog.Catalog) error {
				t, err := c.RevokeBearerToken(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return draw(t, fmt.Sprintf("revoked the bearer token %s\n", t.Name))
			})
		},
	}
	addCatalogFlag(cmd, &catalogLoc)
	return cmd
}
