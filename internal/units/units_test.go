package units

import "testing"

func TestIEC(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{0, "0 B"}, {512, "512 B"}, {1024, "1.0 KiB"}, {1536 << 10, "1.5 MiB"}, {2 << 30, "2.0 GiB"}, {127 << 30, "127.0 GiB"}, {3 << 40, "3.0 TiB"}} {
		if got := IEC(tc.n); got != tc.want {
			t.Errorf("IEC(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestExact(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{{512, "512 B"}, {1023, "1023 B"}, {5<<20 + 512, "5.00 MiB (5243392 bytes)"}, {3 << 30, "3.00 GiB (3221225472 bytes)"}, {10 << 40, "10.00 TiB (10995116277760 bytes)"}} {
		if got := Exact(tc.n); got != tc.want {
			t.Errorf("Exact(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
