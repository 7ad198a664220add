// Command imgpipe builds one VM image and delivers the same bits to Hyper-V
// hosts and to Azure Compute Gallery, tracking every copy by version.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	os.Exit(exitCode(err))
}

// exitError carries a specific exit code (for example "drift found") out of a
// command without printing anything extra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

// exitCode prints err for the user (commands never print their own fatal
// errors) and decides the process exit status.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(os.Stderr, "imgpipe:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(os.Stderr, "imgpipe:", err)
	return 1
}
