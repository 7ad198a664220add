//go:build unix

package build

import (
	"os/exec"
	"syscall"
)

// interruptGroup runs Packer in its own process group and, on cancellation,
// interrupts the whole group as Ctrl-C in a terminal would: Packer cleans up
// and the scripts it started stop too.
func interruptGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGINT) }
}
