// Command imgpipe builds one VM image and delivers the same bits to Hyper-V
// hosts and to Azure Compute Gallery, tracking every copy by version.
package main

import (
	"context"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// run executes one imgpipe command line and returns the process exit status.
// An interrupt (Ctrl-C, SIGTERM) cancels the command's context.
func run(parent context.Context, args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetErr(stderr)
	err := asUsage(root.ExecuteContext(ctx))
	interrupted := ctx.Err() != nil && parent.Err() == nil
	code := exitCode(err, interrupted)
	if err != nil {
		renderError(stderr, stdout, err, code)
	}
	return code
}
