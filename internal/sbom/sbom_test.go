package sbom

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	cdx "github.com/CycloneDX/cyclonedx-go"
	"github.com/package-url/packageurl-go"
	"github.com/santhosh-tekuri/jsonschema/v6"

	"imgpipe/internal/drift"
	"imgpipe/internal/testenv"
)

// schema compiles the official CycloneDX 1.6 JSON schema kept in testdata.
func schema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, f := range []string{"bom-1.6.schema.json", "spdx.schema.json", "jsf-0.82.schema.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", "schema", f))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if err := c.AddResource("http://cyclonedx.org/schema/"+f, doc); err != nil {
			t.Fatal(err)
		}
	}
	s, err := c.Compile("http://cyclonedx.org/schema/bom-1.6.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func validate(t *testing.T, s *jsonschema.Schema, data []byte) {
	t.Helper()
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(doc); err != nil {
		t.Fatalf("document does not validate against the CycloneDX 1.6 schema: %v", err)
	}
}

// debianTree is a tree holding a copy of this machine's own dpkg database and
// os-release: a real Debian package inventory, not a made-up one.
func debianTree(t *testing.T) string {
	t.Helper()
	status, err := os.ReadFile("/var/lib/dpkg/status")
	if err != nil {
		testenv.Missing(t, "this test reads a real dpkg database (/var/lib/dpkg/status): "+err.Error())
	}
	osr, err := os.ReadFile("/etc/os-release")
	if err != nil {
		testenv.Missing(t, "no /etc/os-release: "+err.Error())
	}
	root := t.TempDir()
	for rel, data := range map[string][]byte{"var/lib/dpkg/status": status, "etc/os-release": osr} {
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func capture(t *testing.T, root string) *drift.Baseline {
	t.Helper()
	b, err := drift.Capture(t.Context(), root, drift.CaptureOptions{Rules: drift.Rules{Paths: []string{"etc"}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDebianTreeMatchesDpkgQuery: the SBOM of a real Debian package database
// (this machine's own, copied into a tree) validates against the official
// schema and lists exactly what dpkg-query -W lists for that database.
func TestDebianTreeMatchesDpkgQuery(t *testing.T) {
	checkTreeMatchesDpkgQuery(t, debianTree(t))
}

// TestDebootstrapTree does the same on a tree made by debootstrap (variant
// minbase). It needs root and a Debian mirror, and takes minutes:
//
//	IMGPIPE_TEST_DEBOOTSTRAP=1 go test -timeout 30m -run TestDebootstrapTree -v ./internal/sbom
func TestDebootstrapTree(t *testing.T) {
	if os.Getenv("IMGPIPE_TEST_DEBOOTSTRAP") != "1" {
		t.Skip("set IMGPIPE_TEST_DEBOOTSTRAP=1 to debootstrap a Debian root (needs root, network, minutes)")
	}
	if os.Geteuid() != 0 {
		testenv.Missing(t, "debootstrap needs root")
	}
	deb := testenv.RequireTool(t, "debootstrap")
	root := filepath.Join(t.TempDir(), "root")
	args := []string{"--variant=minbase", "bookworm", root}
	if m := os.Getenv("IMGPIPE_DEBOOTSTRAP_MIRROR"); m != "" {
		args = append(args, m)
	}
	if out, err := exec.CommandContext(t.Context(), deb, args...).CombinedOutput(); err != nil {
		t.Fatalf("debootstrap %v: %v\n%s", args, err, out)
	}
	checkTreeMatchesDpkgQuery(t, root)
}

// TestTree does the same on any Debian tree named by IMGPIPE_SBOM_TREE, e.g.
// the demo image's root mounted from its disk:
//
//	IMGPIPE_SBOM_TREE=/mnt/demo go test -run TestTree -v ./internal/sbom
func TestTree(t *testing.T) {
	root := os.Getenv("IMGPIPE_SBOM_TREE")
	if root == "" {
		t.Skip("set IMGPIPE_SBOM_TREE to a Debian root (e.g. a mounted image) to check its SBOM")
	}
	checkTreeMatchesDpkgQuery(t, root)
}

func checkTreeMatchesDpkgQuery(t *testing.T, root string) {
	t.Helper()
	dq := testenv.RequireTool(t, "dpkg-query")
	b := capture(t, root)
	if b.OS == nil || b.OS.ID == "" {
		t.Fatalf("baseline has no os-release: %+v", b.OS)
	}
	bom, err := FromBaseline(b, Subject{Image: "web", Version: "1.4.0", Digest: "sha256:" + strings.Repeat("ab", 32), Tool: "test"})
	if err != nil {
		t.Fatal(err)
	}
	data, err := Encode(bom)
	if err != nil {
		t.Fatal(err)
	}
	validate(t, schema(t), data)

	out, err := exec.Command(dq, "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W",
		"-f", "${db:Status-Status} ${Package} ${Version} ${Architecture}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	var want []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) != 4 || f[0] == "not-installed" || f[0] == "config-files" {
			continue
		}
		want = append(want, f[1]+" "+f[2]+" "+f[3])
	}
	sort.Strings(want)
	back, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range *back.Components {
		pu, err := packageurl.FromString(c.PackageURL)
		if err != nil {
			t.Fatalf("component %s: purl %q: %v", c.Name, c.PackageURL, err)
		}
		if pu.Type != "deb" || pu.Namespace != b.OS.ID || pu.Name != c.Name || pu.Version != c.Version {
			t.Errorf("component %s %s has purl %q, want pkg:deb/%s/%s@%s", c.Name, c.Version, c.PackageURL, b.OS.ID, c.Name, c.Version)
		}
		got = append(got, pu.Name+" "+pu.Version+" "+pu.Qualifiers.Map()["arch"])
	}
	sort.Strings(got)
	if len(want) < 50 {
		t.Fatalf("dpkg-query listed only %d packages: not a real Debian database?", len(want))
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("SBOM packages differ from dpkg-query -W:\n got %d\nwant %d\nfirst got %q\nfirst want %q", len(got), len(want), got[:3], want[:3])
	}
	t.Logf("%d packages, as dpkg-query -W lists them", len(got))
	if bom.Metadata.Component.Name != "web" || bom.Metadata.Component.Version != "1.4.0" {
		t.Errorf("subject = %+v", bom.Metadata.Component)
	}
	again, _ := FromBaseline(b, Subject{Image: "web", Version: "1.4.0", Digest: "sha256:" + strings.Repeat("ab", 32), Tool: "test"})
	if again.SerialNumber != bom.SerialNumber {
		t.Errorf("serial number not reproducible: %s vs %s", again.SerialNumber, bom.SerialNumber)
	}
}

func TestPackageURL(t *testing.T) {
	deb := &drift.OSRelease{ID: "debian", VersionID: "12"}
	fed := &drift.OSRelease{ID: "fedora", VersionID: "40"}
	for _, tc := range []struct {
		p    drift.Package
		os   *drift.OSRelease
		want string
	}{
		{drift.Package{Manager: "dpkg", Name: "curl", Version: "7.88.1-10+deb12u5", Arch: "amd64"}, deb,
			"pkg:deb/debian/curl@7.88.1-10%2Bdeb12u5?arch=amd64&distro=debian-12"},
		{drift.Package{Manager: "dpkg", Name: "libc6", Version: "2.36-9", Arch: "amd64"}, nil,
			"pkg:deb/linux/libc6@2.36-9?arch=amd64"},
		{drift.Package{Manager: "rpm", Name: "bash", Version: "5.2.26-3.fc40", Arch: "x86_64"}, fed,
			"pkg:rpm/fedora/bash@5.2.26-3.fc40?arch=x86_64&distro=fedora-40"},
		{drift.Package{Manager: "rpm", Name: "openssl", Version: "1:3.2.1-2.fc40", Arch: "x86_64"}, fed,
			"pkg:rpm/fedora/openssl@3.2.1-2.fc40?arch=x86_64&distro=fedora-40&epoch=1"},
	} {
		got, err := PackageURL(tc.p, tc.os)
		if err != nil || got != tc.want {
			t.Errorf("PackageURL(%+v) = %q, %v; want %q", tc.p, got, err, tc.want)
		}
	}
	if _, err := PackageURL(drift.Package{Manager: "apk", Name: "x", Version: "1"}, nil); err == nil {
		t.Error("an unknown package manager was accepted")
	}
}

// TestCompare: one package upgraded, one added, one removed; the rest equal.
func TestCompare(t *testing.T) {
	osr := &drift.OSRelease{ID: "debian", VersionID: "12"}
	mk := func(pkgs ...drift.Package) *cdx.BOM {
		b, err := FromBaseline(&drift.Baseline{OS: osr, Packages: pkgs}, Subject{Image: "web", Version: "1.0.0"})
		if err != nil {
			t.Fatal(err)
		}
		data, _ := Encode(b)
		back, err := Decode(data)
		if err != nil {
			t.Fatal(err)
		}
		return back
	}
	p := func(n, v string) drift.Package {
		return drift.Package{Manager: "dpkg", Name: n, Version: v, Arch: "amd64"}
	}
	a := mk(p("bash", "5.2-1"), p("curl", "7.88-1"), p("vim", "9.0-1"))
	b := mk(p("bash", "5.2-1"), p("curl", "7.88-2"), p("jq", "1.6-2"))
	d := Compare(a, b)
	if len(d.Changed) != 1 || d.Changed[0].Name != "curl" || d.Changed[0].From != "7.88-1" || d.Changed[0].To != "7.88-2" {
		t.Errorf("changed = %+v", d.Changed)
	}
	if len(d.Added) != 1 || d.Added[0].Name != "jq" {
		t.Errorf("added = %+v", d.Added)
	}
	if len(d.Removed) != 1 || d.Removed[0].Name != "vim" {
		t.Errorf("removed = %+v", d.Removed)
	}
	if !Compare(a, a).Empty() {
		t.Error("a document differs from itself")
	}
}

func TestDecodeRefuses(t *testing.T) {
	for _, in := range []string{``, `{}`, `{"bomFormat":"SPDX"}`, `[1,2]`, strings.Repeat(" ", maxDocument+1)} {
		if _, err := Decode([]byte(in)); err == nil {
			t.Errorf("Decode(%.20q) accepted", in)
		}
	}
}

// TestSchemaRejects keeps the schema check honest: a document the schema
// forbids must fail it.
func TestSchemaRejects(t *testing.T) {
	s := schema(t)
	bad := []byte(`{"bomFormat":"CycloneDX","specVersion":"1.6","version":1,"components":[{"type":"no-such-type","name":"x"}]}`)
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(bad))
	if err != nil {
		t.Fatal(err)
	}
	if s.Validate(doc) == nil {
		t.Fatal("the schema accepted a component of an unknown type")
	}
}
