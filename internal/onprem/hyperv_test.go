package onprem

import (
	"errors"
	"strings"
	"testing"
)

// TestHyperVShape pins the one decision both Hyper-V scripts (deploy here,
// the test gate's in internal/testrun) take from the library metadata.
func TestHyperVShape(t *testing.T) {
	for _, tc := range []struct {
		name          string
		md            *Metadata
		root          string
		want          HyperVVM
		memory        int64
		cpus          int
		wantErr       string
		wantErrIsRevk bool
	}{
		{name: "gen1 vhd", md: deployMD("V1", "vhd-dynamic", "linux"), root: `\\fs01\images\`, memory: 1 << 30, cpus: 1,
			want: HyperVVM{Generation: 1, Parent: `\\fs01\images\web\1.2.0\web-1.2.0.vhd`, ChildExt: "vhd", MemoryBytes: 1 << 30, CPUs: 1}},
		{name: "gen2 linux", md: deployMD("V2", "vhdx", "linux"), root: "/srv/images", memory: 32 << 20, cpus: 240,
			want: HyperVVM{Generation: 2, Parent: "/srv/images/web/1.2.0/web-1.2.0.vhdx", ChildExt: "vhdx", SecureBootTemplate: "MicrosoftUEFICertificateAuthority", MemoryBytes: 32 << 20, CPUs: 240}},
		{name: "gen2 windows", md: deployMD("V2", "vhdx", "windows"), root: `D:\lib`, memory: 4 << 30, cpus: 8,
			want: HyperVVM{Generation: 2, Parent: `D:\lib\web\1.2.0\web-1.2.0.vhdx`, ChildExt: "vhdx", SecureBootTemplate: "MicrosoftWindows", MemoryBytes: 4 << 30, CPUs: 8}},
		{name: "no default memory", md: deployMD("V1", "vhdx", "linux"), memory: 0, cpus: 2, wantErr: "at least 32 MiB"},
		{name: "odd memory", md: deployMD("V1", "vhdx", "linux"), memory: 33 << 20, cpus: 2, wantErr: "multiples of 2 MiB"},
		{name: "no default cpus", md: deployMD("V1", "vhdx", "linux"), memory: 1 << 30, cpus: 0, wantErr: "use 1 to 240"},
		{name: "too many cpus", md: deployMD("V1", "vhdx", "linux"), memory: 1 << 30, cpus: 241, wantErr: "use 1 to 240"},
		{name: "generation", md: deployMD("V3", "vhdx", "linux"), memory: 1 << 30, cpus: 2, wantErr: "expected V1 or V2"},
		{name: "gen2 vhd", md: deployMD("V2", "vhd-fixed", "linux"), memory: 1 << 30, cpus: 2, wantErr: "VHDX parent"},
		{name: "raw", md: deployMD("V1", "raw", "linux"), memory: 1 << 30, cpus: 2, wantErr: "VHDX or VHD parent"},
		{name: "os", md: deployMD("V1", "vhdx", "plan9"), memory: 1 << 30, cpus: 2, wantErr: "malformed"},
		{name: "root", md: deployMD("V1", "vhdx", "linux"), root: "\\\\fs\\x\r\nStop-Computer", memory: 1 << 30, cpus: 2, wantErr: "control characters"},
		{name: "revoked", md: func() *Metadata { m := deployMD("V2", "vhdx", "linux"); m.Revoked = true; return m }(), memory: 1 << 30, cpus: 2, wantErr: "revoked", wantErrIsRevk: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HyperVShape(tc.md, tc.root, tc.memory, tc.cpus)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want %q", err, tc.wantErr)
				}
				if tc.wantErrIsRevk && !errors.Is(err, ErrRevoked) {
					t.Fatalf("err %v is not ErrRevoked", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v %v, want %+v", got, err, tc.want)
			}
		})
	}
}
