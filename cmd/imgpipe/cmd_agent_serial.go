package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/agent"
)

// serialFlags are the agent's test-boot mode (imgpipe test's guest side).
type serialFlags struct {
	reportTo string
	spec     string
}

func (s *serialFlags) add(cmd *cobra.Command) {
	f := cmd.Flags()
	f.StringVar(&s.reportTo, "report-to", "", "with --once: serial[:PATH] runs the test spec of 'imgpipe test' (drift check + declared commands) and writes a framed report to the serial port PATH (default "+agent.DefaultSerialPort+", COM2) instead of sending it to a server")
	f.StringVar(&s.spec, "test-spec", "auto", "with --report-to: the test spec disk or file (auto: the block device whose first bytes hold a spec frame)")
}

// runAgentSerial is `imgpipe agent --once --report-to serial[:PATH]`: it
// exits 0 when the report was written and every check passed, 2 when a check
// failed (the report says which), 1 when no report could be written.
func runAgentSerial(cmd *cobra.Command, opts agent.Options, s serialFlags, once bool) error {
	if !once {
		return errors.New("--report-to applies to --once (one test boot, one report)")
	}
	port, ok := strings.CutPrefix(s.reportTo, "serial")
	if !ok || (port != "" && !strings.HasPrefix(port, ":")) {
		return fmt.Errorf("--report-to %q: use serial or serial:PATH (e.g. serial:/dev/ttyS1)", s.reportTo)
	}
	port = strings.TrimPrefix(port, ":")
	if port == "" {
		port = agent.DefaultSerialPort
	}
	opts.Version = imgpipeVersion()
	a, err := agent.NewLocal(opts)
	if err != nil {
		return err
	}
	rep, err := a.RunSerialTest(cmd.Context(), agent.SerialOptions{Port: port, Spec: s.spec})
	if jsonOutput() {
		if perr := printJSON(rep); perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	failed := rep.Error != "" || rep.Drift.Drifted || rep.Drift.Error != ""
	for _, c := range rep.Commands {
		failed = failed || c.ExitCode < 0
	}
	if !jsonOutput() {
		fmt.Fprintf(stdout, "test %s: report written to %s (%d commands, drift %v)\n", rep.Test, port, len(rep.Commands), rep.Drift.Drifted)
	}
	if failed {
		return negative(nil)
	}
	return nil
}
