package onprem

import (
	"errors"
	"flag"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"imgpipe/internal/golden"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func deployMD(gen, format, osName string) *Metadata {
	return &Metadata{
		Schema: 1, Image: "web", Version: "1.2.0", Generation: gen, OS: osName,
		DiskFile: "web-1.2.0." + formatExt[format], Format: format,
		SHA256: strings.Repeat("ab", 32),
	}
}

func TestDeployScriptGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		md     *Metadata
		opt    DeployOptions
	}{
		{"gen1-vhd.ps1", deployMD("V1", "vhd-fixed", "linux"), DeployOptions{HostLibraryPath: `\\fs01\images`}},
		{"gen2-linux.ps1", deployMD("V2", "vhdx", "linux"), DeployOptions{
			HostLibraryPath: `\\fs01\images\`, VMName: "web-01", Switch: "External", MemoryBytes: 4 << 30, CPUs: 4,
			DiskDirectory: `D:\Hyper-V\Disks`}},
		{"gen2-windows-nohash.ps1", deployMD("V2", "vhdx", "windows"), DeployOptions{HostLibraryPath: `\\fs01\images`, SkipHashCheck: true}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := DeployScript(tc.md, tc.opt)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.golden), got, *update)
			// Independent of the golden text: the generation and the disk are the right ones.
			gen := map[string]string{"V1": "-Generation 1", "V2": "-Generation 2"}[tc.md.Generation]
			if !strings.Contains(got, "New-VM -Name $VMName "+gen+" ") {
				t.Errorf("script does not create a VM with %s", gen)
			}
			parent := `\\fs01\images\web\1.2.0\` + tc.md.DiskFile
			if !strings.Contains(got, "$ParentPath = '"+parent+"'") || !strings.Contains(got, "New-VHD -Path $DiskPath -ParentPath $ParentPath -Differencing") {
				t.Errorf("script does not make a differencing disk on %s", parent)
			}
			hasSB := strings.Contains(got, "Set-VMFirmware")
			if hasSB != (tc.md.Generation == "V2") {
				t.Errorf("Set-VMFirmware present=%v for %s", hasSB, tc.md.Generation)
			}
		})
	}
}

func TestDeployScriptRefuses(t *testing.T) {
	revoked := deployMD("V1", "vhdx", "linux")
	revoked.Revoked, revoked.RevokedReason = true, "CVE"
	badSHA := deployMD("V1", "vhdx", "linux")
	badSHA.SHA256 = "'; Remove-Item C:\\ -Recurse; '"
	for _, tc := range []struct {
		name string
		md   *Metadata
		opt  DeployOptions
		want string
	}{
		{"raw parent", deployMD("V1", "raw", "linux"), DeployOptions{}, "VHDX or VHD parent"},
		{"gen2 on vhd", deployMD("V2", "vhd-fixed", "linux"), DeployOptions{}, "only from VHDX"},
		{"revoked", revoked, DeployOptions{}, "revoked"},
		{"hand-edited sha", badSHA, DeployOptions{}, "malformed"},
		{"newline in name", deployMD("V1", "vhdx", "linux"), DeployOptions{VMName: "a\nRemove-Item x"}, "control characters"},
		{"odd memory", deployMD("V1", "vhdx", "linux"), DeployOptions{MemoryBytes: 1000}, "memory"},
		{"cpus", deployMD("V1", "vhdx", "linux"), DeployOptions{CPUs: -1}, "cpus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DeployScript(tc.md, tc.opt)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
	if _, err := DeployScript(revoked, DeployOptions{}); !errors.Is(err, ErrRevoked) {
		t.Errorf("revoked: %v", err)
	}
}

// psUnquote is an independent reading of a PowerShell single-quoted literal:
// it returns the string value and the rest of the input after the literal.
func psUnquote(s string) (val, rest string, ok bool) {
	isQ := func(r rune) bool { return r == '\'' || (r >= '\u2018' && r <= '\u201b') }
	r, n := utf8.DecodeRuneInString(s)
	if !isQ(r) {
		return "", s, false
	}
	s = s[n:]
	var b strings.Builder
	for s != "" {
		r, n := utf8.DecodeRuneInString(s)
		s = s[n:]
		if isQ(r) {
			r2, n2 := utf8.DecodeRuneInString(s)
			if s != "" && isQ(r2) {
				b.WriteRune(r2)
				s = s[n2:]
				continue
			}
			return b.String(), s, true
		}
		b.WriteRune(r)
	}
	return "", "", false
}

func TestPSQuote(t *testing.T) {
	for _, in := range []string{"", "web-01", "it's", "'; Remove-Item C:\\ -Recurse; '", "a\u2019b", "$(Get-Process)", "`n", "\u201a\u201b'"} {
		q := PSQuote(in)
		got, rest, ok := psUnquote(q)
		if !ok || got != in || rest != "" {
			t.Errorf("PSQuote(%q) = %s reads back as %q rest %q ok %v", in, q, got, rest, ok)
		}
	}
}

func FuzzPSQuote(f *testing.F) {
	for _, s := range []string{"", "x", "'", "''", "\u2018\u2019", "a'b$c`d\"e", "\xff'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) {
			return
		}
		got, rest, ok := psUnquote(PSQuote(s))
		if !ok || got != s || rest != "" {
			t.Fatalf("%q does not survive quoting: got %q rest %q", s, got, rest)
		}
	})
}
