package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
	"imgpipe/internal/drift"
)

// baselineWith captures the baseline of a Debian-like tree whose dpkg
// database lists pkgs ("name version" each).
func baselineWith(t *testing.T, pkgs ...string) string {
	t.Helper()
	root := t.TempDir()
	var status strings.Builder
	for _, p := range pkgs {
		n, v, _ := strings.Cut(p, " ")
		status.WriteString("Package: " + n + "\nStatus: install ok installed\nArchitecture: amd64\nVersion: " + v + "\n\n")
	}
	for rel, data := range map[string]string{"var/lib/dpkg/status": status.String(), "etc/os-release": "ID=debian\nVERSION_ID=\"12\"\n"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(rel)), 0o755)
		if err := os.WriteFile(filepath.Join(root, rel), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := drift.Capture(t.Context(), root, drift.CaptureOptions{Rules: drift.Rules{Paths: []string{"etc"}}})
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "baseline.bin")
	os.WriteFile(p, data, 0o644)
	return p
}

// TestSupplyChainCLI: keys, SBOM record/show/diff, attest, verify and the
// prod gate, through the CLI on a real catalog.
func TestSupplyChainCLI(t *testing.T) {
	ctx := t.Context()
	staging := fakeStaging(t)
	dir := t.TempDir()
	loc := filepath.Join(dir, "catalog.db")
	cat, err := catalog.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "lib", "web-1.vhdx")
	os.MkdirAll(filepath.Dir(lib), 0o755)
	for _, v := range []string{"1.0.0", "1.1.0"} {
		art := sha256.Sum256([]byte("artifact " + v))
		ref := catalog.Ref{Image: "web", Version: v}
		if _, err := cat.AddVersion(ctx, catalog.NewVersion{Image: "web", Version: v, Provenance: catalog.Provenance{ArtifactSHA256: hex.EncodeToString(art[:])}}); err != nil {
			t.Fatal(err)
		}
		ac, _ := cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindArtifact, ResourceID: "build/" + v, Fingerprint: "sha256:" + hex.EncodeToString(art[:]), State: catalog.StatePresent})
		libBits := []byte("library " + v)
		os.WriteFile(lib+v, libBits, 0o644)
		ls := sha256.Sum256(libBits)
		cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindOnprem, ResourceID: lib + v, Fingerprint: "sha256:" + hex.EncodeToString(ls[:]), State: catalog.StatePresent, ParentID: ac.ID})
		cat.PutCopy(ctx, ref, catalog.Copy{Kind: catalog.KindGalleryVersion, Location: "westeurope", ResourceID: "gv/" + v, State: catalog.StateSucceeded, ParentID: ac.ID})
		catalogtest.Tested(t, cat, ref) // prod's other requirement: this test is of the signature gate
	}
	cat.Close()
	run := func(want int, args ...string) string {
		t.Helper()
		out, err := runCLI(t, append(args, "--catalog", loc)...)
		if code := exitCode(err, false); code != want {
			t.Fatalf("imgpipe %s: exit %d (%v), want %d\n%s", strings.Join(args, " "), code, err, want, out)
		}
		return out
	}
	prefix := filepath.Join(dir, "keys", "signing")
	out, err := runCLI(t, "key", "generate", "--out", prefix)
	if err != nil || !strings.Contains(out, "private: "+prefix+".pem") {
		t.Fatalf("key generate: %v\n%s", err, out)
	}
	if fi, err := os.Stat(prefix + ".pem"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode: %v %v", fi.Mode(), err)
	}

	run(0, "sbom", "record", "web", "1.0.0", "--baseline", baselineWith(t, "bash 5.2-1", "curl 7.88-1", "jq 1.6-2"))
	run(0, "sbom", "record", "web", "1.1.0", "--baseline", baselineWith(t, "bash 5.2-1", "curl 7.88-2", "jq 1.6-2"))
	doc := run(0, "show", "web", "1.0.0", "--sbom")
	if !strings.Contains(doc, `"bomFormat": "CycloneDX"`) || !strings.Contains(doc, "pkg:deb/debian/curl@7.88-1?arch=amd64") {
		t.Errorf("show --sbom:\n%s", doc)
	}
	diff := run(0, "sbom", "diff", "web", "1.0.0", "1.1.0", "-o", "json")
	var d struct {
		Added, Removed []any
		Changed        []struct{ Name, From, To string }
	}
	if err := json.Unmarshal([]byte(diff), &d); err != nil {
		t.Fatal(err, diff)
	}
	if len(d.Added)+len(d.Removed) != 0 || len(d.Changed) != 1 || d.Changed[0].Name != "curl" || d.Changed[0].To != "7.88-2" {
		t.Errorf("sbom diff names more or less than the one upgraded package: %s", diff)
	}

	// Unsigned: verify says no (exit 2); once a key is trusted prod refuses it.
	run(2, "verify", "web", "1.0.0", "--key", prefix+".pub.pem")
	run(0, "key", "trust", prefix+".pub.pem")
	out, err = runCLI(t, "promote", "web", "1.0.0", "--to", "prod", "--catalog", loc)
	if err == nil || !strings.Contains(err.Error(), "provenance") {
		t.Fatalf("unsigned version promoted to prod: %v\n%s", err, out)
	}
	if out := run(0, "attest", "web", "1.0.0", "--key", prefix+".pem", "--template", "web.pkr.hcl"); !strings.Contains(out, "written beside the library copy") {
		t.Errorf("attest:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(lib), "provenance.dsse.json")); err != nil {
		t.Errorf("no envelope beside the library copy: %v", err)
	}
	if env := run(0, "show", "web@1.0.0", "--provenance"); !strings.Contains(env, `"payloadType": "application/vnd.in-toto+json"`) {
		t.Errorf("show --provenance:\n%s", env)
	}
	if out := run(0, "verify", "web", "1.0.0"); !strings.Contains(out, "verified: signed by") {
		t.Errorf("verify:\n%s", out)
	}
	run(0, "promote", "web", "1.0.0", "--to", "prod", "--sign-key", prefix+".pem")
	if exclude, ok := staging.got["gv/1.0.0"]; !ok || exclude {
		t.Errorf("promote to prod did not include gv/1.0.0 in latest: %v", staging.got)
	}
	// A changed library copy is caught.
	os.WriteFile(lib+"1.0.0", []byte("tampered"), 0o644)
	if out := run(2, "verify", "web", "1.0.0"); !strings.Contains(out, "the copy was changed") {
		t.Errorf("verify after tampering:\n%s", out)
	}
}
