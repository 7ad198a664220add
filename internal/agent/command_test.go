package agent

import (
	"context"
	"strings"
	"testing"
)

// TestRunRefusesBadCommandLines: the command-line mistakes Run refuses
// before it checks or sends anything.
func TestRunRefusesBadCommandLines(t *testing.T) {
	for _, c := range []struct {
		cmd  Command
		want string
	}{
		{Command{Once: true, Quick: true, Full: true}, "--quick or --full, not both"},
		{Command{Once: true}, "--server is required"},
		{Command{ReportTo: "serial"}, "--report-to applies to --once"},
		{Command{Once: true, ReportTo: "tcp:1.2.3.4"}, `--report-to "tcp:1.2.3.4": use serial or serial:PATH`},
		{Command{Once: true, ReportTo: "serialx"}, "use serial or serial:PATH"},
		{Command{Options: Options{Server: "https://fleet.example:8443", Root: t.TempDir(), Token: "0123456789abcdef"}, Quick: true},
			"--quick and --full apply to --once"},
	} {
		out, err := Run(context.Background(), c.cmd)
		if err == nil || !strings.Contains(err.Error(), c.want) || out != nil {
			t.Errorf("Run(%+v) = %v, %v; want an error with %q", c.cmd, out, err, c.want)
		}
	}
}
