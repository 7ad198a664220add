package testrun

import (
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/agent"
	"imgpipe/internal/golden"
	"imgpipe/internal/onprem"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func hypervMD(gen, format, osName string) *onprem.Metadata {
	ext := map[string]string{"vhdx": "vhdx", "vhd-fixed": "vhd"}[format]
	return &onprem.Metadata{Schema: 1, Image: "web", Version: "1.2.0", Generation: gen, OS: osName,
		DiskFile: "web-1.2.0." + ext, Format: format, SHA256: strings.Repeat("ab", 32)}
}

// fixedSpecs makes the specs with nonces derived from the test name, so the
// golden text is stable.
func fixedSpecs(t Test, image, version string) (*agent.TestSpec, []byte, error) {
	spec := &agent.TestSpec{Schema: agent.TestSpecSchema, Test: t.Name, Nonce: strings.Repeat("0f", 16)[:32-len(t.Name)] + strings.Repeat("a", len(t.Name)),
		Image: image, Version: version, DriftClean: t.DriftClean, Commands: t.Commands}
	frame, err := agent.EncodeFrame(agent.FrameSpec, spec)
	return spec, frame, err
}

var hypervTests = []Test{
	{Name: "smoke", BootTimeout: 5 * time.Minute, DriftClean: true, Commands: []agent.TestCommand{{Name: "nginx", Run: "systemctl is-active nginx", TimeoutSec: 30}}},
	{Name: "drift-only", DriftClean: true},
}

func TestHyperVScriptGolden(t *testing.T) {
	for _, tc := range []struct {
		golden string
		md     *onprem.Metadata
		opt    HyperVOptions
		tests  []Test
	}{
		{"hyperv-gen1-vhd.ps1", hypervMD("V1", "vhd-fixed", "linux"), HyperVOptions{HostLibraryPath: `\\fs01\images`}, hypervTests[:1]},
		{"hyperv-gen2-linux.ps1", hypervMD("V2", "vhdx", "linux"), HyperVOptions{HostLibraryPath: `\\fs01\images\`, WorkDir: `D:\imgpipe-tests`,
			MemoryBytes: 2 << 30, CPUs: 4}, hypervTests},
		{"hyperv-gen2-windows-nohash.ps1", hypervMD("V2", "vhdx", "windows"), HyperVOptions{HostLibraryPath: `\\fs01\images`, SkipHashCheck: true}, hypervTests[1:]},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			got, err := hyperVScript(tc.md, tc.opt, tc.tests, fixedSpecs)
			if err != nil {
				t.Fatal(err)
			}
			golden.Check(t, filepath.Join("testdata", tc.golden), got, *update)
			// Independent of the golden text.
			gen := map[string]string{"V1": "-Generation 1", "V2": "-Generation 2"}[tc.md.Generation]
			parent := `\\fs01\images\web\1.2.0\` + tc.md.DiskFile
			for _, want := range []string{
				"$ParentPath = '" + parent + "'",
				"New-VHD -Path $Child -ParentPath $ParentPath -Differencing",
				"New-VM -Name $Name " + gen + " ",
				"Remove-VMNetworkAdapter",
				"Set-VMComPort -VMName $Name -Number 2 -Path ('\\\\.\\pipe\\' + $Pipe)",
				"NamedPipeClientStream('.', $Pipe",
				"} finally {",
				"Remove-VM -Name $Name -Force",
				"Remove-Item -LiteralPath $f -Force",
			} {
				if !strings.Contains(got, want) {
					t.Errorf("script lacks %q", want)
				}
			}
			if sb := strings.Contains(got, "Set-VMFirmware -VMName $Name -EnableSecureBoot On"); sb != (tc.md.Generation == "V2") {
				t.Errorf("Secure Boot present=%v for %s", sb, tc.md.Generation)
			}
			if tc.md.Generation == "V2" {
				tmpl := map[string]string{"linux": "'MicrosoftUEFICertificateAuthority'", "windows": "'MicrosoftWindows'"}[tc.md.OS]
				if !strings.Contains(got, "-SecureBootTemplate "+tmpl) {
					t.Errorf("Secure Boot template for %s is not %s", tc.md.OS, tmpl)
				}
			}
			if hc := strings.Contains(got, "Get-FileHash"); hc == tc.opt.SkipHashCheck {
				t.Errorf("hash check present=%v with SkipHashCheck=%v", hc, tc.opt.SkipHashCheck)
			}
			// each test's spec is embedded, and decodes to that test
			calls := regexp.MustCompile(`(?m)^Invoke-ImgpipeTest -Test '([^']+)' -Nonce '([0-9a-f]+)' -TimeoutSeconds (\d+) -Spec '([A-Za-z0-9+/=]+)'$`).FindAllStringSubmatch(got, -1)
			if len(calls) != len(tc.tests) {
				t.Fatalf("%d test calls, want %d", len(calls), len(tc.tests))
			}
			for i, c := range calls {
				frame, err := base64.StdEncoding.DecodeString(c[4])
				if err != nil {
					t.Fatal(err)
				}
				var spec agent.TestSpec
				if err := agent.DecodeFrame(strings.NewReader(string(frame)), agent.FrameSpec, &spec); err != nil {
					t.Fatalf("embedded spec of %s: %v", c[1], err)
				}
				if spec.Test != tc.tests[i].Name || spec.Nonce != c[2] || len(spec.Commands) != len(tc.tests[i].Commands) {
					t.Errorf("embedded spec %+v for call %v", spec, c[1:4])
				}
			}
		})
	}
}

func TestHyperVScriptRefuses(t *testing.T) {
	revoked := hypervMD("V1", "vhdx", "linux")
	revoked.Revoked, revoked.RevokedReason = true, "CVE"
	badSHA := hypervMD("V1", "vhdx", "linux")
	badSHA.SHA256 = "'; Remove-Item C:\\ -Recurse; '"
	for _, tc := range []struct {
		name  string
		md    *onprem.Metadata
		opt   HyperVOptions
		tests []Test
		want  string
	}{
		{"no tests", hypervMD("V1", "vhdx", "linux"), HyperVOptions{}, nil, "no test"},
		{"revoked", revoked, HyperVOptions{}, hypervTests, "revoked"},
		{"gen2 vhd", hypervMD("V2", "vhd-fixed", "linux"), HyperVOptions{}, hypervTests, "VHDX parent"},
		{"bad generation", hypervMD("V3", "vhdx", "linux"), HyperVOptions{}, hypervTests, "generation"},
		{"edited sha", badSHA, HyperVOptions{}, hypervTests, "malformed"},
		{"memory", hypervMD("V1", "vhdx", "linux"), HyperVOptions{MemoryBytes: 33 << 20}, hypervTests, "multiples of 2 MiB"},
		{"control chars", hypervMD("V1", "vhdx", "linux"), HyperVOptions{WorkDir: "D:\\x\r\nStop-Computer"}, hypervTests, "control characters"},
		{"test name", hypervMD("V1", "vhdx", "linux"), HyperVOptions{}, []Test{{Name: "a'b"}}, "test name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := hyperVScript(tc.md, tc.opt, tc.tests, fixedSpecs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err %v, want %q", err, tc.want)
			}
		})
	}
}

// TestHyperVResult judges what the script saves: the spec it attached and
// the report from COM2 (with console noise around it, as a pipe carries it).
func TestHyperVResult(t *testing.T) {
	declared := hypervTests[:1]
	spec, frame, err := fixedSpecs(declared[0], "web", "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	write := func(t *testing.T, report []byte) string {
		dir := t.TempDir()
		p := filepath.Join(dir, "imgpipe-test-web-1.2.0-smoke-0f0f0f0f.report")
		os.WriteFile(strings.TrimSuffix(p, ".report")+".spec", frame, 0o644)
		os.WriteFile(p, report, 0o644)
		return p
	}
	now := time.Now().UTC().Truncate(time.Second)
	report := func(nonce string, exit int, out string) []byte {
		b, err := agent.EncodeFrame(agent.FrameReport, &agent.TestReport{Schema: agent.TestReportSchema, Test: "smoke", Nonce: nonce, Host: "imgpipe-test",
			StartedAt: now, FinishedAt: now.Add(3 * time.Second),
			Drift:    agent.Report{Schema: agent.Schema, Host: "imgpipe-test", Platform: "onprem", Image: "web", Version: "1.2.0", Depth: "full", CheckedAt: now},
			Commands: []agent.CommandResult{{Name: "nginx", ExitCode: exit, Output: out}}})
		if err != nil {
			t.Fatal(err)
		}
		return append([]byte("Hyper-V console noise\r\n"), b...)
	}
	res, err := HyperVResult(write(t, report(spec.Nonce, 0, "active")), "web", "1.2.0", declared)
	if err != nil || !res.Passed || res.Runner != "hyperv" || !res.FinishedAt.Equal(now.Add(3*time.Second)) {
		t.Fatalf("good report: %+v %v", res, err)
	}
	res, err = HyperVResult(write(t, report(spec.Nonce, 3, "inactive")), "web", "1.2.0", declared)
	if f := res.FirstFailure(); err != nil || res.Passed || f == nil || f.Name != "command:nginx" || !strings.Contains(f.Output, "inactive") {
		t.Fatalf("failing command: %+v %v", res, err)
	}
	for _, bad := range []struct {
		name   string
		report []byte
		want   string
	}{
		{"stale", report("ffffffffffffffffffffffffffffffff", 0, "active"), "stale or foreign"},
		{"empty", nil, "no report on COM2"},
		{"oversized", []byte("==IMGPIPE-REPORT v1 len=99999999 sha256=" + strings.Repeat("0", 64) + "==\n"), "unusable"},
		{"checksum", []byte("==IMGPIPE-REPORT v1 len=2 sha256=" + strings.Repeat("0", 64) + "==\n{}\n==IMGPIPE-END==\n"), "unusable"},
	} {
		t.Run(bad.name, func(t *testing.T) {
			res, err := HyperVResult(write(t, bad.report), "web", "1.2.0", declared)
			if f := res.FirstFailure(); err != nil || res.Passed || f == nil || !strings.Contains(f.Output, bad.want) {
				t.Fatalf("%+v %v, want a failure saying %q", res, err, bad.want)
			}
		})
	}
	// a spec that is not the declared test's is refused, not judged
	changed := []Test{{Name: "smoke", DriftClean: true, Commands: []agent.TestCommand{{Name: "nginx", Run: "true", TimeoutSec: 30}}}}
	if _, err := HyperVResult(write(t, report(spec.Nonce, 0, "")), "web", "1.2.0", changed); err == nil || !strings.Contains(err.Error(), "other checks") {
		t.Errorf("changed test: %v", err)
	}
	if _, err := HyperVResult(write(t, report(spec.Nonce, 0, "")), "web", "1.2.0", hypervTests[1:]); err == nil || !strings.Contains(err.Error(), "does not declare") {
		t.Errorf("undeclared test: %v", err)
	}
	if _, err := HyperVResult(filepath.Join(t.TempDir(), "none.report"), "web", "1.2.0", declared); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("no spec file: %v", err)
	}
}
