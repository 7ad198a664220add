//go:build unix

package catalog

import (
	"errors"
	"syscall"
)

// processAlive tells whether a process with this pid exists on this host
// (signal 0 checks without sending anything; EPERM means it exists but is
// another user's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
