package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azurite"
)

func init() { register(newEmulatorCmd) }

func newEmulatorCmd() *cobra.Command {
	var (
		listen, stateDir                 string
		blobURL, blobAccount, blobKey    string
		startAzurite                     bool
		azuritePort                      int
		opts                             azemu.Options
		faults                           azemu.Faults
		lroDelay, replication, conflictW time.Duration
		rbacDelay                        time.Duration
	)
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local Azure Resource Manager emulator (galleries, images, disks) for demos and tests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			opts.LRODelay, opts.ReplicationDuration, opts.DeleteConflictWindow = lroDelay, replication, conflictW
			opts.RBACDelay = rbacDelay
			if rbacDelay <= 0 {
				opts.RBACDelay = -1 // azemu: a negative delay means none (zero picks Azure's 10 minutes)
			}
			opts.Faults = faults
			if blobURL != "" {
				opts.Storage = azemu.Storage{BlobEndpoint: blobURL, AccountName: blobAccount, AccountKey: blobKey}
			}
			local, err := azemu.StartLocal(azemu.LocalOptions{Options: opts, Listen: listen, StateDir: stateDir, StartAzurite: startAzurite,
				AzuritePort: azuritePort, Notice: func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }})
			if err != nil {
				return err
			}
			defer local.Close()
			env := local.Env
			if jsonOutput() {
				if err := printJSON(env); err != nil {
					return err
				}
			} else {
				if err := printTable([]string{"SETTING", "VALUE"}, [][]string{
					{"endpoint", env.Endpoint}, {"authority host", env.AuthorityHost}, {"CA certificate", env.CACertPath},
					{"tenant id", env.TenantID}, {"client id", env.ClientID}, {"client secret", env.ClientSecret}, {"object id", env.ObjectID},
					{"subscription id", env.SubscriptionID + " (any well-formed id works)"}, {"blob endpoint", orDash(env.BlobEndpoint)},
					{"storage account", orDash(env.StorageAccountID)}, {"role assignments take effect after", env.RBACDelay},
					{"state", orDash(env.StateDir)}, {"shell exports", env.EnvFile},
				}); err != nil {
					return err
				}
				fmt.Fprintf(stdout, "\nready in %s; serving until interrupted (Ctrl-C)\n", time.Since(start).Round(time.Millisecond))
			}
			ctx, stop := signal.NotifyContext(cmdContext(cmd), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8443", "address to serve HTTPS on (use port 0 for a free port)")
	f.StringVar(&stateDir, "state", "", "directory for state (JSON), the TLS certificate and emulator.env; empty keeps state in memory")
	f.StringVar(&blobURL, "azurite-blob", "", "blob endpoint of Azurite, e.g. http://127.0.0.1:10000/devstoreaccount1")
	f.BoolVar(&startAzurite, "start-azurite", false, "also start Azurite's blob service (in memory, on 127.0.0.1) and use it; found as $IMGPIPE_AZURITE, on PATH, in node_modules, or run with npm exec")
	f.IntVar(&azuritePort, "azurite-port", 0, "port for --start-azurite's blob service (default a free port)")
	f.StringVar(&blobAccount, "azurite-account", azurite.AccountName, "storage account name for --azurite-blob")
	f.StringVar(&blobKey, "azurite-key", azurite.AccountKey, "storage account key for --azurite-blob (default: Azurite's well-known development key)")
	f.StringVar(&opts.TenantID, "tenant-id", azemu.DefaultTenantID, "tenant the token endpoint serves")
	f.StringVar(&opts.ClientID, "client-id", azemu.DefaultClientID, "client id the token endpoint accepts")
	f.StringVar(&opts.ClientSecret, "client-secret", azemu.DefaultClientSecret, "client secret the token endpoint accepts")
	durationVar(f, &lroDelay, "lro-delay", 2*time.Second, "how long long-running operations take")
	durationVar(f, &replication, "replication-duration", 10*time.Second, "how long a gallery image version takes to reach its last target region")
	durationVar(f, &conflictW, "delete-conflict-window", 15*time.Second, "how long 409 CannotDeleteResource persists after the last nested resource is gone")
	durationVar(f, &rbacDelay, "rbac-delay", time.Minute, "how long a role assignment takes to take effect (Azure: up to 10m); until then deploys from another subscription get LinkedAuthorizationFailed (0 for at once)")
	f.StringVar(&opts.ReplicaPolicy, "replica-policy", azemu.ReplicaPolicyCurrent, "adding a region to a version whose source is gone: strict (refuse) or current (allow with an empty storageProfile)")
	f.Uint64Var(&faults.Seed, "fault-seed", 1, "seed of the fault generator (same seed, same faults)")
	f.Float64Var(&faults.Throttle, "fault-throttle", 0, "fraction of requests answered 429 with Retry-After")
	f.Float64Var(&faults.ServerError, "fault-server-error", 0, "fraction of requests answered 500")
	f.Float64Var(&faults.LROFailure, "fault-lro", 0, "fraction of long-running operations that fail midway")
	f.Float64Var(&faults.Drop, "fault-drop", 0, "fraction of requests whose connection is dropped")
	return cmd
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
