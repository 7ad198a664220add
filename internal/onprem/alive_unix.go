//go:build unix

package onprem

import (
	"errors"
	"syscall"
)

// processAlive tells whether a process with this pid exists on this host
// (signal 0 checks without sending anything; EPERM: it exists, another
// user's).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}
