package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/events"
	"imgpipe/internal/server"
)

func init() { register(newServeCmd) }

func newServeCmd() *cobra.Command {
	var (
		listen, catalogLoc, tlsCert, tlsKey string
		debugListen                         string
		token, tokenFile, channel           string
		subs                                []string
		azureInterval, staleAfter           time.Duration
		rec                                 serveReconcile // serve_reconcile.go
		auth                                *serveAuthFlags
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the fleet dashboard, the HTTP API, agent intake and Prometheus metrics",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			withTLS := tlsCert != "" || tlsKey != ""
			if err := server.CheckListen(listen, withTLS); err != nil {
				return err
			}
			tok, err := readToken(token, tokenFile, agentTokenEnv, true)
			if err != nil {
				return err
			}
			if tok != "" && len(tok) < 16 {
				return errors.New("the agent token is shorter than 16 characters: generate one, e.g. openssl rand -hex 32")
			}
			ctx := cmd.Context()
			cat, err := openCatalog(ctx, catalogLoc)
			if err != nil {
				return err
			}
			defer cat.Close()
			cfg := server.Config{Catalog: cat, AgentToken: tok, Channel: channel, AzureInterval: azureInterval, StaleAfter: staleAfter}
			if cfg.Auth, err = auth.config(listen); err != nil {
				return err
			}
			if len(subs) > 0 {
				cred, co, err := azure.ConnectionFromEnv().Open()
				if err != nil {
					return fmt.Errorf("azure connection: %w", err)
				}
				cfg.Azure = &server.AzurePuller{Subscriptions: subs, Credential: cred, ClientOptions: co}
			}
			srv, err := server.New(cfg)
			if err != nil {
				return err
			}
			if err := rec.start(ctx, cat); err != nil {
				return err
			}
			// Events queued by any imgpipe against this catalog go out from
			// here; replicas share the work through the outbox's claims.
			go (&events.Deliverer{Cat: cat}).Run(ctx, 5*time.Second, func(r events.Result, err error) {
				if err != nil {
					slog.Warn("event delivery", "err", err)
				} else if r.Failed > 0 {
					slog.Warn("event delivery", "delivered", r.Delivered, "failed", r.Failed, "first_error", r.Errors[0])
				}
			})
			return srv.ListenAndServe(ctx, server.ServeOptions{Listen: listen, TLSCert: tlsCert, TLSKey: tlsKey, DebugListen: debugListen,
				OnListening: func(addr string) {
					scheme := "http"
					if withTLS {
						scheme = "https"
					}
					fmt.Fprintf(os.Stderr, "imgpipe serve: %s://%s (catalog %s, channel %s", scheme, addr, cat.Location(), cfg.Channel)
					if tok == "" {
						fmt.Fprint(os.Stderr, ", agent intake disabled: no token")
					}
					if len(subs) > 0 {
						fmt.Fprintf(os.Stderr, ", Azure %s", strings.Join(subs, ","))
					}
					fmt.Fprintln(os.Stderr, ")")
				}})
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8080", "address to listen on (non-loopback needs --tls-cert and --tls-key)")
	addCatalogFlag(cmd, &catalogLoc)
	f.StringVar(&debugListen, "debug-listen", "", "serve Go's profiler (/debug/pprof/) on this loopback address")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate (chain) for HTTPS")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key for HTTPS")
	f.StringVar(&token, "agent-token", "", "bearer token agents must send (prefer --agent-token-file or $"+agentTokenEnv+")")
	f.StringVar(&tokenFile, "agent-token-file", "", "file holding the agent token")
	f.StringVar(&channel, "channel", "prod", "channel hosts' staleness is measured against")
	f.StringArrayVar(&subs, "azure-subscription", nil, "pull VMs and scale sets of this subscription (repeatable)")
	durationVar(f, &azureInterval, "azure-interval", 10*time.Minute, "time between Azure pulls")
	durationVar(f, &staleAfter, "stale-after", 24*time.Hour, "mark hosts not heard from for this long as stale")
	rec.add(f)
	cmd.AddCommand(newServeRevokeAgentCmd())
	auth = addServeAuth(cmd)
	return cmd
}

func newServeRevokeAgentCmd() *cobra.Command {
	var catalogLoc string
	cmd := &cobra.Command{
		Use:   "revoke-agent HOST",
		Short: "Revoke a host's agent credential (its reports are refused until it enrols again)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openCatalog(cmd.Context(), catalogLoc)
			if err != nil {
				return err
			}
			defer cat.Close()
			if err := cat.RevokeHostCredential(cmd.Context(), args[0]); err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(map[string]string{"host": args[0], "credential": "revoked"})
			}
			fmt.Fprintf(stdout, "revoked the agent credential of %s; its next enrolment gets a new one\n", args[0])
			return nil
		},
	}
	addCatalogFlag(cmd, &catalogLoc)
	return cmd
}
