package onprem

import (
	"fmt"
	"regexp"
	"strings"
)

// nameRE is deliberately narrow: library paths live on SMB shares read by
// Windows hosts and are pasted into PowerShell, so only characters that are
// safe everywhere are accepted.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$`)

// windowsReserved are device names Windows refuses as file names, with or
// without an extension.
var windowsReserved = map[string]bool{
	"CON": true, "PRN": true, "AUX": true, "NUL": true,
	"COM1": true, "COM2": true, "COM3": true, "COM4": true, "COM5": true, "COM6": true, "COM7": true, "COM8": true, "COM9": true,
	"LPT1": true, "LPT2": true, "LPT3": true, "LPT4": true, "LPT5": true, "LPT6": true, "LPT7": true, "LPT8": true, "LPT9": true,
}

// reservedNames are used by the library layout itself.
var reservedNames = map[string]bool{"channels": true, "latest.json": true, "metadata.json": true}

// checkName validates an image, version or channel name.
func checkName(kind, s string) error {
	if !nameRE.MatchString(s) || strings.HasSuffix(s, ".") {
		return fmt.Errorf("%s name %q is not usable: use 1-100 letters, digits, '.', '_' or '-', starting with a letter or digit and not ending with '.'", kind, s)
	}
	base := strings.ToUpper(s)
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	if windowsReserved[base] {
		return fmt.Errorf("%s name %q is a reserved device name on Windows hosts: choose another", kind, s)
	}
	if reservedNames[strings.ToLower(s)] {
		return fmt.Errorf("%s name %q is used by the library layout itself: choose another", kind, s)
	}
	return nil
}
