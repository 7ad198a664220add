package view

import (
	"fmt"
	"io"

	"imgpipe/internal/agent"
)

// AgentRun draws what imgpipe agent --once did: the report (or the test
// report) as JSON, else one line. sent says the run ended without an
// error (the report was delivered, or the test report written).
func AgentRun(w io.Writer, asJSON bool, o *agent.Outcome, sent bool) error {
	var err error
	switch {
	case o == nil:
	case asJSON && o.Test != nil:
		err = JSON(w, o.Test)
	case asJSON:
		err = JSON(w, o.Report)
	case o.Test != nil && sent:
		_, err = fmt.Fprintf(w, "test %s: report written to %s (%d commands, drift %v)\n", o.Test.Test, o.Port, len(o.Test.Commands), o.Test.Drift.Drifted)
	case o.Report != nil && o.Report.Error == "":
		_, err = fmt.Fprintln(w, o.Report.Line(sent))
	}
	return err
}
