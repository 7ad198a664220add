package main

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/agent"
	"imgpipe/internal/drift"
)

func init() { register(newAgentCmd) }

const agentTokenEnv = "IMGPIPE_AGENT_TOKEN"

// readToken picks a token: the flag, else the file, else the environment.
func readToken(flag, file, env string, private bool) (string, error) {
	return agent.ReadToken(flag, file, env, private)
}

func newAgentCmd() *cobra.Command {
	var (
		opts                agent.Options
		tokenFile, caFile   string
		interval, fullEvery time.Duration
		once, quick, full   bool
		timeout             time.Duration
		serial              serialFlags
	)
	cmd := &cobra.Command{
		Use:   "agent",
		Short: "Check this machine for drift from its image and report to imgpipe serve",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if quick && full {
				return errors.New("give --quick or --full, not both")
			}
			if serial.reportTo != "" {
				return runAgentSerial(cmd, opts, serial, once)
			}
			if opts.Server == "" {
				return errors.New("--server is required (or --report-to serial in a test boot)")
			}
			tok, err := readToken(opts.Token, tokenFile, agentTokenEnv, false)
			if err != nil {
				return err
			}
			opts.Token = tok
			opts.DefaultCredentialFile()
			if opts.HTTPClient, err = agent.HTTPClient(caFile, timeout); err != nil {
				return err
			}
			opts.Version = agent.BuildVersion()
			a, err := agent.New(opts)
			if err != nil {
				return err
			}
			if !once {
				if quick || full {
					return errors.New("--quick and --full apply to --once; periodic runs use --interval and --full-every")
				}
				return a.Loop(cmd.Context(), interval, fullEvery, func(r agent.Report, err error) {
					if err != nil {
						slog.Warn("agent run failed", "err", err)
						return
					}
					slog.Info("agent report sent", "depth", r.Depth, "drifted", r.Drifted)
				})
			}
			depth := drift.Full
			if quick {
				depth = drift.Quick
			}
			r, err := a.RunOnce(cmd.Context(), depth)
			if jsonOutput() {
				if perr := printJSON(r); perr != nil && err == nil {
					err = perr
				}
			} else if r.Error == "" {
				fmt.Fprintln(stdout, r.Line(err == nil))
			}
			if err != nil {
				return err
			}
			if r.Drifted {
				return negative(nil)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Server, "server", "", "base URL of imgpipe serve, e.g. https://fleet.example:8443 (required unless --report-to)")
	f.StringVar(&opts.Token, "token", "", "fleet token, to enrol (prefer --token-file or $"+agentTokenEnv+")")
	f.StringVar(&tokenFile, "token-file", "", "file holding the fleet token, to enrol")
	f.StringVar(&opts.CredentialFile, "credential-file", "", "where this host's credential is kept (default etc/imgpipe/agent.credential under --root)")
	durationVar(f, &opts.Splay, "splay", 0, "delay the first check by a random time up to this (periodic mode)")
	f.StringVar(&caFile, "ca-file", "", "PEM CA certificate(s) to trust for the server (default: the system's)")
	durationVar(f, &interval, "interval", 5*time.Minute, "time between checks (periodic mode)")
	durationVar(f, &fullEvery, "full-every", 24*time.Hour, "run a full check this often (periodic mode); quick checks in between")
	f.BoolVar(&once, "once", false, "run one check, send it, exit 0 (no drift), 2 (drift) or 1 (failure)")
	f.BoolVar(&quick, "quick", false, "with --once: quick check (re-hash only files whose stat changed)")
	f.BoolVar(&full, "full", false, "with --once: full check (the default for --once)")
	f.StringVar(&opts.Root, "root", "/", "root of the system to check")
	f.StringVar(&opts.Baseline, "baseline", "", "baseline file (default: the one inside --root)")
	f.StringVar(&opts.Host, "name", "", "host name to report (default: the system's host name)")
	f.StringVar(&opts.Platform, "platform", "auto", "auto, onprem or azure")
	f.StringVar(&opts.Region, "region", "", "site or region to report, e.g. paris-dc1 (default none; Azure VMs get their location from the server's Azure pull)")
	f.StringArrayVar(&opts.Ignore, "ignore", nil, "ignore paths matching this glob (repeatable)")
	f.IntVar(&opts.Workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
	f.IntVar(&opts.MaxChanges, "max-changes", agent.MaxChanges, "findings listed in a report (the summary counts all)")
	f.IntVar(&opts.Attempts, "attempts", 5, "delivery attempts per report")
	durationVar(f, &timeout, "timeout", 30*time.Second, "timeout of one delivery attempt")
	serial.add(cmd)
	return cmd
}

// imgpipeVersion is the version agents report (the VCS revision when known).
func imgpipeVersion() string { return agent.BuildVersion() }
