package emulatorenv

import (
	"testing"

	"imgpipe/internal/azemu"
)

// The emulator writes these names to emulator.env and may not import its
// clients (azemu's TestDepcheck), so the names are written twice: here they
// must agree.
func TestNamesMatchTheEmulator(t *testing.T) {
	for _, c := range [][2]string{
		{EnvARMEndpoint, azemu.EnvARMEndpoint},
		{EnvBlobEndpoint, azemu.EnvBlobEndpoint},
		{EnvStorageAccount, azemu.EnvStorageAccount},
		{EnvStorageKey, azemu.EnvStorageKey},
	} {
		if c[0] != c[1] {
			t.Errorf("emulatorenv says %q, the emulator writes %q", c[0], c[1])
		}
	}
}
