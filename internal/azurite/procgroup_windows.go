//go:build windows

package azurite

import "os/exec"

// Windows has no process groups to signal; kill the process itself.
func newProcessGroup(cmd *exec.Cmd) {}
func terminateGroup(cmd *exec.Cmd)  { _ = cmd.Process.Kill() }
func killGroup(cmd *exec.Cmd)       { _ = cmd.Process.Kill() }
