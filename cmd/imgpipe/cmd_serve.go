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
		Long: `serve runs imgpipe's fleet server on top of the catalog:

  /                          fleet table: host, platform, image, version, the
                             channel's newest, versions behind, revoked, drift
                             counts, last seen
  /images                    images and versions by channel, with their regions
  /hosts/NAME                a host's drift detail
  GET  /api/images           images (JSON)
  GET  /api/images/I/versions  versions of I with channels, regions, hosts
  GET  /api/hosts            the fleet (JSON), worst first: ?state= &image=
                             &version= &platform= &q= &limit= &offset=;
                             /api/hosts/NAME one host
  POST /api/enroll           an agent trades the fleet token for a credential
                             bound to its host name (once per host)
  POST /api/reports          agent reports (host credential, JSON, at most
                             64 KiB, for the credential's host only)
  POST /api/azure/refresh    pull Azure now (bearer token)
  GET  /metrics              Prometheus: hosts by channel, image, version,
                             platform and state, by report age, intake
                             outcomes and batches, build_info, Go, process

It listens on loopback unless given a certificate: a non-loopback --listen
without --tls-cert/--tls-key is refused. Agents enrol with the fleet token
(--agent-token-file, which must not be readable by group or others,
$IMGPIPE_AGENT_TOKEN, or --agent-token); without one the intake answers 503.
Each host then reports with its own credential; 'imgpipe serve revoke-agent
NAME' revokes one (a rebuilt machine enrols again). A report's body must
arrive within 10 seconds and is read before it takes one of the 256 intake
slots, so slow senders hold only their own connection. Every report is
validated and size-limited; a bad one gets a 4xx and nothing is stored.
Reports are stored in batches (one transaction, one credential look-up for
all of them) and each is answered 202 only once its batch has committed.

Replicas: any number of serve processes may share one PostgreSQL catalog
(behind a load balancer). Everything they show is read from the catalog,
and the periodic work (the Azure pull, fleet snapshots for charts, pruning
the report history, kept 30 days) is claimed in the catalog by one replica
at a time.

With --azure-subscription the server (one replica of them) lists the VMs and
scale sets of those subscriptions at start, every --azure-interval and on POST /api/azure/refresh,
and records those whose imageReference is a gallery image version (or a
definition, meaning its latest version) as azure hosts, so machines without
an agent still show how stale their image is. It authenticates with the
Azure SDK's default credential chain (environment, workload or managed
identity, Azure CLI) and needs read access to the VMs; IMGPIPE_ARM_ENDPOINT,
AZURE_AUTHORITY_HOST and IMGPIPE_CA_CERT point it elsewhere (the variables
'imgpipe emulator' prints).`,
		Example: `  # on a workstation: dashboard on http://127.0.0.1:8080
  imgpipe serve --catalog ~/imgpipe/catalog.db

  # for a fleet: TLS, a shared catalog, agents and Azure
  imgpipe serve --listen 0.0.0.0:8443 --tls-cert fleet.crt --tls-key fleet.key \
    --catalog postgres://imgpipe@db/imgpipe --agent-token-file /etc/imgpipe/agent.token \
    --azure-subscription 11111111-2222-3333-4444-555555555555`,
		Args: cobra.NoArgs,
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
		Long: `revoke-agent forgets the credential HOST's agent enrolled with. Its reports
are refused (401) from then on; the next enrolment under that name, with the
fleet token, gets a new credential. Use it when a machine is rebuilt under
the same name, or when its credential may have leaked.`,
		Example: `  imgpipe serve revoke-agent web-07 --catalog postgres://imgpipe@db/imgpipe`,
		Args:    cobra.ExactArgs(1),
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
