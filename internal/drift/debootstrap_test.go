//go:build linux

package drift

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"imgpipe/internal/testenv"
)

// TestDebootstrap runs the capture/check scenario on a real Debian root made
// by debootstrap (variant minbase). It needs root and network access to a
// Debian mirror, and takes minutes, so it runs only with
// IMGPIPE_TEST_DEBOOTSTRAP=1:
//
//	IMGPIPE_TEST_DEBOOTSTRAP=1 go test -timeout 30m -run TestDebootstrap -v ./internal/drift
//
// IMGPIPE_DEBOOTSTRAP_SUITE (default bookworm) and IMGPIPE_DEBOOTSTRAP_MIRROR
// (default: debootstrap's own) choose what is bootstrapped.
func TestDebootstrap(t *testing.T) {
	if os.Getenv("IMGPIPE_TEST_DEBOOTSTRAP") != "1" {
		t.Skip("set IMGPIPE_TEST_DEBOOTSTRAP=1 to debootstrap a Debian root (needs root, network, minutes)")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "debootstrap needs root")
	}
	deb := testenv.RequireTool(t, "debootstrap")
	suite := os.Getenv("IMGPIPE_DEBOOTSTRAP_SUITE")
	if suite == "" {
		suite = "bookworm"
	}
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"--variant=minbase", suite, root}
	if m := os.Getenv("IMGPIPE_DEBOOTSTRAP_MIRROR"); m != "" {
		args = append(args, m)
	}
	ctx := context.Background()
	cmd := exec.CommandContext(ctx, deb, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %v: %v\n%s", args, err, out)
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// A disabled unit, so enabling it can be checked (minbase has no systemd).
	must(os.MkdirAll(p("usr/lib/systemd/system"), 0o755))
	must(os.WriteFile(p("usr/lib/systemd/system/imgpipe-test.service"), []byte("[Service]\nExecStart=/bin/true\n[Install]\nWantedBy=multi-user.target\n"), 0o644))

	if _, err := WriteIdentity(root, Identity{Image: "debian-minbase", Version: "1.0.0"}); err != nil {
		t.Fatal(err)
	}
	if osr, _ := os.ReadFile(p("usr/lib/os-release")); !bytes.Contains(osr, []byte("IMAGE_ID=debian-minbase\nIMAGE_VERSION=1.0.0\n")) {
		t.Errorf("os-release: %s", osr)
	}
	waitRacy()
	base, err := Capture(ctx, root, CaptureOptions{Rules: DefaultRules("linux")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := WriteBaselineFile(p("etc/imgpipe/baseline.bin"), base); err != nil {
		t.Fatal(err)
	}
	if base, err = ReadBaselineFile(p("etc/imgpipe/baseline.bin")); err != nil {
		t.Fatal(err)
	}
	t.Logf("baseline: %d entries, %d hashed, %d packages, %d services, problems %v", len(base.Files), base.Stats.Hashed, len(base.Packages), len(base.Services), base.Problems)
	if len(base.Packages) < 50 || len(base.Files) < 5000 {
		t.Fatalf("suspiciously small baseline: %d packages, %d entries", len(base.Packages), len(base.Files))
	}
	for _, depth := range []Depth{Full, Quick} {
		r, err := Check(ctx, root, base, CheckOptions{Depth: depth})
		if err != nil {
			t.Fatal(err)
		}
		if r.Drifted {
			t.Fatalf("%s check right after capture: %q", depth, summarize(r))
		}
	}

	fi, err := os.Stat(p("etc/debian_version"))
	must(err)
	old, _ := os.ReadFile(p("etc/debian_version"))
	must(os.WriteFile(p("etc/debian_version"), bytes.Repeat([]byte("9"), len(old)), 0o644))
	must(os.Chtimes(p("etc/debian_version"), fi.ModTime(), fi.ModTime()))
	f, err := os.OpenFile(p("etc/issue.net"), os.O_APPEND|os.O_WRONLY, 0)
	must(err)
	f.WriteString("drifted\n")
	f.Close()
	must(os.WriteFile(p("etc/imgpipe-added"), []byte("x\n"), 0o644))
	must(os.Remove(p("etc/motd")))
	must(os.Chmod(p("etc/shells"), 0o600))
	must(os.Lchown(p("etc/issue"), 1000, 1000))
	must(os.WriteFile(p("var/log/imgpipe-churn.log"), []byte("ignored\n"), 0o644))
	st, err := os.ReadFile(p("var/lib/dpkg/status"))
	must(err)
	st = append(bytes.TrimRight(st, "\n"), "\n\nPackage: imgpipe-test\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0-1\n"...)
	must(os.WriteFile(p("var/lib/dpkg/status"), st, 0o644))
	_, err = os.Stat(p("etc/systemd/system/multi-user.target.wants"))
	wantsExisted := err == nil
	must(os.MkdirAll(p("etc/systemd/system/multi-user.target.wants"), 0o755))
	must(os.Symlink("/usr/lib/systemd/system/imgpipe-test.service", p("etc/systemd/system/multi-user.target.wants/imgpipe-test.service")))

	want := []string{
		"changed etc/debian_version content",
		"added etc/imgpipe-added",
		"changed etc/issue owner",
		"changed etc/issue.net content,size",
		"removed etc/motd",
		"changed etc/shells mode",
		"added etc/systemd/system/multi-user.target.wants/imgpipe-test.service",
	}
	if !wantsExisted {
		want = append(want, "added etc/systemd/system/multi-user.target.wants")
		if _, err := os.Stat(p("etc/systemd/system")); err == nil && len(base.Services) == 0 {
			t.Log("etc/systemd/system existed without units")
		}
	}
	sort.Strings(want)
	want = append(want,
		"package added imgpipe-test all ->1.0-1",
		"service changed imgpipe-test.service disabled->enabled (multi-user.target)")
	for _, depth := range []Depth{Full, Quick} {
		r, err := Check(ctx, root, base, CheckOptions{Depth: depth})
		if err != nil {
			t.Fatal(err)
		}
		got := summarize(r)
		sort.Strings(got[:len(r.Files)])
		// etc/systemd/system/multi-user.target.wants may be new, and then
		// etc/systemd and etc/systemd/system can be too on minbase.
		got = slices.DeleteFunc(got, func(s string) bool {
			return (s == "added etc/systemd" || s == "added etc/systemd/system") && !wantsExisted
		})
		if !slices.Equal(got, want) {
			t.Errorf("%s check:\n got %q\nwant %q", depth, got, want)
		}
		t.Logf("%s check: %d entries, %d hashed, %d reused, %d ms", depth, r.Stats.Entries, r.Stats.Hashed, r.Stats.Reused, r.DurationMS)
		if depth == Quick && r.Stats.Hashed > 10 {
			t.Errorf("quick check hashed %d files", r.Stats.Hashed)
		}
	}
}
