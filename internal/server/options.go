package server

// imgpipe serve's setup: from what its flags say to a running server.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/events"
)

// Environment variables serve reads its secrets from when no flag or file
// gives them.
const (
	AgentTokenEnv = agent.TokenEnv
	OIDCSecretEnv = "IMGPIPE_OIDC_CLIENT_SECRET"
)

// Options are imgpipe serve's settings as its flags give them; Run turns
// them into a Config and serves.
type Options struct {
	ServeOptions
	// AgentToken or AgentTokenFile (mode 0600) give the fleet token, else
	// $IMGPIPE_AGENT_TOKEN; none disables the intake.
	AgentToken, AgentTokenFile string
	Channel                    string
	// Subscriptions are pulled from Azure (reached as azure.ConnectionFromEnv
	// says) every AzureInterval.
	Subscriptions             []string
	AzureInterval, StaleAfter time.Duration
	Auth                      AuthOptions
	// Catalog opens the catalog once the options are checked; Run closes it.
	Catalog func(context.Context) (*catalog.Catalog, error)
	// Start, when set, starts work beside the server once the catalog is
	// open (serve's reconciler); its error stops serve before it listens.
	Start func(context.Context, *catalog.Catalog) error
	// Notes receives the lines people read at start (the CLI passes stderr).
	Notes io.Writer
}

// AuthOptions say who may read, as serve's sign-in flags give it.
type AuthOptions struct {
	OIDC OIDCConfig
	// SecretFile holds the OIDC client secret, else $IMGPIPE_OIDC_CLIENT_SECRET.
	SecretFile      string
	RequireAuth     bool
	SessionLifetime time.Duration
}

// Run checks o, opens the catalog, builds the server, delivers the
// catalog's queued events, and serves until ctx ends.
func Run(ctx context.Context, o Options) error {
	if o.Notes == nil {
		o.Notes = io.Discard
	}
	withTLS := o.TLSCert != "" || o.TLSKey != ""
	if err := CheckListen(o.Listen, withTLS); err != nil {
		return err
	}
	tok, err := agent.ReadToken(o.AgentToken, o.AgentTokenFile, AgentTokenEnv, true)
	if err != nil {
		return err
	}
	if tok != "" && len(tok) < 16 {
		return errors.New("the agent token is shorter than 16 characters: generate one, e.g. openssl rand -hex 32")
	}
	cat, err := o.Catalog(ctx)
	if err != nil {
		return err
	}
	defer cat.Close()
	cfg := Config{Catalog: cat, AgentToken: tok, Channel: o.Channel, AzureInterval: o.AzureInterval, StaleAfter: o.StaleAfter}
	if cfg.Auth, err = o.Auth.config(o.Listen); err != nil {
		return err
	}
	if cfg.Auth.Required {
		how := "a bearer token (imgpipe serve token create)"
		if cfg.Auth.OIDC != nil {
			how += " or sign-in with " + cfg.Auth.OIDC.Issuer
		}
		fmt.Fprintf(o.Notes, "imgpipe serve: reading needs %s\n", how)
	}
	if len(o.Subscriptions) > 0 {
		cred, co, err := azure.ConnectionFromEnv().Open()
		if err != nil {
			return fmt.Errorf("azure connection: %w", err)
		}
		cfg.Azure = &AzurePuller{Subscriptions: o.Subscriptions, Credential: cred, ClientOptions: co}
	}
	srv, err := New(cfg)
	if err != nil {
		return err
	}
	if o.Start != nil {
		if err := o.Start(ctx, cat); err != nil {
			return err
		}
	}
	// Events queued by any imgpipe against this catalog go out from here;
	// replicas share the work through the outbox's claims.
	go (&events.Deliverer{Cat: cat}).Run(ctx, 5*time.Second, logDelivery)
	so := o.ServeOptions
	so.OnListening = func(addr string) {
		fmt.Fprint(o.Notes, listeningNote(addr, withTLS, cat.Location(), srv.cfg.Channel, tok != "", o.Subscriptions))
	}
	return srv.ListenAndServe(ctx, so)
}

// config is the server's AuthConfig for a server listening on listen.
func (a AuthOptions) config(listen string) (AuthConfig, error) {
	ac := AuthConfig{SessionLifetime: a.SessionLifetime}
	if a.OIDC.Issuer != "" || a.OIDC.ClientID != "" {
		secret, err := agent.ReadToken("", a.SecretFile, OIDCSecretEnv, true)
		if err != nil {
			return ac, err
		}
		o := a.OIDC
		o.ClientSecret = secret
		ac.OIDC = &o
	}
	ac.Required = AuthRequired(listen, ac.OIDC != nil, a.RequireAuth)
	return ac, nil
}

func logDelivery(r events.Result, err error) {
	if err != nil {
		slog.Warn("event delivery", "err", err)
	} else if r.Failed > 0 {
		slog.Warn("event delivery", "delivered", r.Delivered, "failed", r.Failed, "first_error", r.Errors[0])
	}
}

// listeningNote is the line serve prints once it listens.
func listeningNote(addr string, withTLS bool, catalog, channel string, intake bool, subs []string) string {
	scheme := "http"
	if withTLS {
		scheme = "https"
	}
	s := fmt.Sprintf("imgpipe serve: %s://%s (catalog %s, channel %s", scheme, addr, catalog, channel)
	if !intake {
		s += ", agent intake disabled: no token"
	}
	if len(subs) > 0 {
		s += ", Azure " + strings.Join(subs, ",")
	}
	return s + ")\n"
}
