package main

import (
	"cmp"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/agent"
	"imgpipe/internal/view"
)

func init() { register(newAgentCmd) }

func newAgentCmd() *cobra.Command {
	var c agent.Command
	cmd := &cobra.Command{Use: "agent", Short: "Check this machine for drift from its image and report to imgpipe serve",
		Args: cobra.NoArgs, RunE: func(cmd *cobra.Command, args []string) error {
			out, err := agent.Run(cmd.Context(), c)
			if derr := view.AgentRun(stdout, jsonOutput(), out, err == nil); err != nil || derr != nil {
				return cmp.Or(err, derr)
			}
			return answer(nil, out == nil || !out.Negative)
		}}
	f := cmd.Flags()
	f.StringVar(&c.Server, "server", "", "base URL of imgpipe serve, e.g. https://fleet.example:8443 (required unless --report-to)")
	f.StringVar(&c.Token, "token", "", "fleet token, to enrol (prefer --token-file or $"+agent.TokenEnv+")")
	f.StringVar(&c.TokenFile, "token-file", "", "file holding the fleet token, to enrol")
	f.StringVar(&c.CredentialFile, "credential-file", "", "where this host's credential is kept (default etc/imgpipe/agent.credential under --root)")
	durationVar(f, &c.Splay, "splay", 0, "delay the first check by a random time up to this (periodic mode)")
	f.StringVar(&c.CAFile, "ca-file", "", "PEM CA certificate(s) to trust for the server (default: the system's)")
	durationVar(f, &c.Interval, "interval", 5*time.Minute, "time between checks (periodic mode)")
	durationVar(f, &c.FullEvery, "full-every", 24*time.Hour, "run a full check this often (periodic mode); quick checks in between")
	f.BoolVar(&c.Once, "once", false, "run one check, send it, exit 0 (no drift), 2 (drift) or 1 (failure)")
	f.BoolVar(&c.Quick, "quick", false, "with --once: quick check (re-hash only files whose stat changed)")
	f.BoolVar(&c.Full, "full", false, "with --once: full check (the default for --once)")
	f.StringVar(&c.Root, "root", "/", "root of the system to check")
	f.StringVar(&c.Baseline, "baseline", "", "baseline file (default: the one inside --root)")
	f.StringVar(&c.Host, "name", "", "host name to report (default: the system's host name)")
	f.StringVar(&c.Platform, "platform", "auto", "auto, onprem or azure")
	f.StringVar(&c.Region, "region", "", "site or region to report, e.g. paris-dc1 (default none; Azure VMs get their location from the server's Azure pull)")
	f.StringArrayVar(&c.Ignore, "ignore", nil, "ignore paths matching this glob (repeatable)")
	f.IntVar(&c.Workers, "workers", 0, "parallel walkers and hashers (default: number of CPUs)")
	f.IntVar(&c.MaxChanges, "max-changes", agent.MaxChanges, "findings listed in a report (the summary counts all)")
	f.IntVar(&c.Attempts, "attempts", 5, "delivery attempts per report")
	durationVar(f, &c.Timeout, "timeout", 30*time.Second, "timeout of one delivery attempt")
	f.StringVar(&c.ReportTo, "report-to", "", "with --once: serial[:PATH] runs the test spec of 'imgpipe test' (drift check + declared commands) and writes a framed report to the serial port PATH (default "+agent.DefaultSerialPort+", COM2) instead of sending it to a server")
	f.StringVar(&c.TestSpec, "test-spec", "auto", "with --report-to: the test spec disk or file (auto: the block device whose first bytes hold a spec frame)")
	return cmd
}
