// Package units renders quantities for people, one way for every package
// that turns its data into rows for the CLI to draw.
package units

import "fmt"

// IEC renders a byte count with one decimal and a binary unit: 512 B,
// 1.5 MiB, 2.0 GiB.
func IEC(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// Exact renders a byte count with two decimals, a binary unit and the exact
// count: "3.00 GiB (3221225472 bytes)"; below 1 KiB just "512 B".
func Exact(n int64) string {
	names := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, u := float64(n), 0
	for v >= 1024 && u < len(names)-1 {
		v /= 1024
		u++
	}
	if u == 0 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.2f %s (%d bytes)", v, names[u], n)
}
