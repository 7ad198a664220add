package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azurite"
	"imgpipe/internal/view"
)

func init() { register(newEmulatorCmd) }

func newEmulatorCmd() *cobra.Command {
	var o azemu.LocalOptions
	cmd := &cobra.Command{
		Use:   "emulator",
		Short: "Run a local Azure Resource Manager emulator (galleries, images, disks) for demos and tests",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			start := time.Now()
			if o.RBACDelay <= 0 {
				o.RBACDelay = -1 // azemu: a negative delay means none (zero picks Azure's 10 minutes)
			}
			o.Notice = func(s string) { fmt.Fprintln(cmd.ErrOrStderr(), s) }
			local, err := azemu.StartLocal(o)
			if err != nil {
				return err
			}
			defer local.Close()
			if err := view.Emulator(stdout, jsonOutput(), local.Env, time.Since(start)); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			<-ctx.Done()
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Listen, "listen", "127.0.0.1:8443", "address to serve HTTPS on (use port 0 for a free port)")
	f.StringVar(&o.StateDir, "state", "", "directory for state (JSON), the TLS certificate and emulator.env; empty keeps state in memory")
	f.StringVar(&o.Storage.BlobEndpoint, "azurite-blob", "", "blob endpoint of Azurite, e.g. http://127.0.0.1:10000/devstoreaccount1")
	f.BoolVar(&o.StartAzurite, "start-azurite", false, "also start Azurite's blob service (in memory, on 127.0.0.1) and use it; found as $IMGPIPE_AZURITE, on PATH, in node_modules, or run with npm exec")
	f.IntVar(&o.AzuritePort, "azurite-port", 0, "port for --start-azurite's blob service (default a free port)")
	f.StringVar(&o.Storage.AccountName, "azurite-account", azurite.AccountName, "storage account name for --azurite-blob")
	f.StringVar(&o.Storage.AccountKey, "azurite-key", azurite.AccountKey, "storage account key for --azurite-blob (default: Azurite's well-known development key)")
	f.StringVar(&o.TenantID, "tenant-id", azemu.DefaultTenantID, "tenant the token endpoint serves")
	f.StringVar(&o.ClientID, "client-id", azemu.DefaultClientID, "client id the token endpoint accepts")
	f.StringVar(&o.ClientSecret, "client-secret", azemu.DefaultClientSecret, "client secret the token endpoint accepts")
	durationVar(f, &o.LRODelay, "lro-delay", 2*time.Second, "how long long-running operations take")
	durationVar(f, &o.ReplicationDuration, "replication-duration", 10*time.Second, "how long a gallery image version takes to reach its last target region")
	durationVar(f, &o.DeleteConflictWindow, "delete-conflict-window", 15*time.Second, "how long 409 CannotDeleteResource persists after the last nested resource is gone")
	durationVar(f, &o.RBACDelay, "rbac-delay", time.Minute, "how long a role assignment takes to take effect (Azure: up to 10m); until then deploys from another subscription get LinkedAuthorizationFailed (0 for at once)")
	f.StringVar(&o.ReplicaPolicy, "replica-policy", azemu.ReplicaPolicyCurrent, "adding a region to a version whose source is gone: strict (refuse) or current (allow with an empty storageProfile)")
	f.Uint64Var(&o.Faults.Seed, "fault-seed", 1, "seed of the fault generator (same seed, same faults)")
	f.Float64Var(&o.Faults.Throttle, "fault-throttle", 0, "fraction of requests answered 429 with Retry-After")
	f.Float64Var(&o.Faults.ServerError, "fault-server-error", 0, "fraction of requests answered 500")
	f.Float64Var(&o.Faults.LROFailure, "fault-lro", 0, "fraction of long-running operations that fail midway")
	f.Float64Var(&o.Faults.Drop, "fault-drop", 0, "fraction of requests whose connection is dropped")
	return cmd
}
