package main

import (
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

// lockNotices is where lock waits and take-overs are told (tests replace it).
var lockNotices io.Writer = os.Stderr

// addLockTimeoutFlag gives a command that takes image run locks (publish,
// gc) --lock-timeout, and tells the user, on stderr, whom it waits for and
// when it takes over from a run that is gone.
func addLockTimeoutFlag(cmd *cobra.Command) {
	var timeout time.Duration
	durationVar(cmd.Flags(), &timeout, "lock-timeout", 0, "give up after waiting this long for another run of the image to release its lock, e.g. 5m (default: wait until interrupted)")
	pre := cmd.PreRunE
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		if timeout < 0 {
			return fmt.Errorf("--lock-timeout %s: give a positive duration, e.g. 5m", timeout)
		}
		cmd.SetContext(catalog.WithLockOptions(cmd.Context(), catalog.LockOptions{
			Timeout: timeout,
			Waiting: func(h catalog.Holder) {
				fmt.Fprintf(lockNotices, "imgpipe: waiting for lock held by %s (image %s)\n", h, h.Image)
			},
			TookOver: func(h catalog.Holder) {
				fmt.Fprintf(lockNotices, "imgpipe: took over the lock of %s from %s, which is gone; that run is marked abandoned\n", h.Image, h)
			},
		}))
		if pre != nil {
			return pre(cmd, args)
		}
		return nil
	}
}
