package agent

// imgpipe agent's runs as its flags ask for them: forever (periodic checks
// sent to the server), once (one check sent), or once in a test boot (a
// framed report written to a serial port).

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"imgpipe/internal/drift"
)

// TokenEnv is where the fleet token is read from when no flag or file
// gives it.
const TokenEnv = "IMGPIPE_AGENT_TOKEN"

// Command is imgpipe agent's command line.
type Command struct {
	Options
	TokenFile, CAFile            string
	Interval, FullEvery, Timeout time.Duration
	Once, Quick, Full            bool
	// ReportTo is serial[:PATH] in a test boot (imgpipe test's guest side);
	// TestSpec is the spec's disk or file there ("auto": found by probing).
	ReportTo, TestSpec string
}

// Outcome is what a run with --once did: a report checked (and sent, when
// the run returned no error), or a test report written to Port.
type Outcome struct {
	Report *Report
	Test   *TestReport
	Port   string
	// Negative: drift was found, or a test check failed.
	Negative bool
}

// Run runs the agent as c says until ctx ends (periodic) or once. With
// --once the outcome is returned even when sending failed (its report says
// what was found).
func Run(ctx context.Context, c Command) (*Outcome, error) {
	if c.Quick && c.Full {
		return nil, errors.New("give --quick or --full, not both")
	}
	if c.ReportTo != "" {
		return c.runSerial(ctx)
	}
	if c.Server == "" {
		return nil, errors.New("--server is required (or --report-to serial in a test boot)")
	}
	tok, err := ReadToken(c.Token, c.TokenFile, TokenEnv, false)
	if err != nil {
		return nil, err
	}
	o := c.Options
	o.Token = tok
	o.DefaultCredentialFile()
	if o.HTTPClient, err = HTTPClient(c.CAFile, c.Timeout); err != nil {
		return nil, err
	}
	o.Version = BuildVersion()
	a, err := New(o)
	if err != nil {
		return nil, err
	}
	if !c.Once {
		if c.Quick || c.Full {
			return nil, errors.New("--quick and --full apply to --once; periodic runs use --interval and --full-every")
		}
		return nil, a.Loop(ctx, c.Interval, c.FullEvery, logRun)
	}
	depth := drift.Full
	if c.Quick {
		depth = drift.Quick
	}
	r, err := a.RunOnce(ctx, depth)
	return &Outcome{Report: &r, Negative: r.Drifted}, err
}

func logRun(r Report, err error) {
	if err != nil {
		slog.Warn("agent run failed", "err", err)
		return
	}
	slog.Info("agent report sent", "depth", r.Depth, "drifted", r.Drifted)
}

// runSerial is `imgpipe agent --once --report-to serial[:PATH]`: the
// outcome is negative when a check failed (the report says which); an
// error means no report could be written.
func (c Command) runSerial(ctx context.Context) (*Outcome, error) {
	if !c.Once {
		return nil, errors.New("--report-to applies to --once (one test boot, one report)")
	}
	port, ok := strings.CutPrefix(c.ReportTo, "serial")
	if !ok || (port != "" && !strings.HasPrefix(port, ":")) {
		return nil, fmt.Errorf("--report-to %q: use serial or serial:PATH (e.g. serial:/dev/ttyS1)", c.ReportTo)
	}
	port = strings.TrimPrefix(port, ":")
	if port == "" {
		port = DefaultSerialPort
	}
	o := c.Options
	o.Version = BuildVersion()
	a, err := NewLocal(o)
	if err != nil {
		return nil, err
	}
	rep, err := a.RunSerialTest(ctx, SerialOptions{Port: port, Spec: c.TestSpec})
	failed := rep.Error != "" || rep.Drift.Drifted || rep.Drift.Error != ""
	for _, cr := range rep.Commands {
		failed = failed || cr.ExitCode < 0
	}
	return &Outcome{Test: &rep, Port: port, Negative: failed}, err
}
