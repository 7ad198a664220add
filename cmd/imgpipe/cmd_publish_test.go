package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azemu"
	"imgpipe/internal/azemu/azemutest"
	"imgpipe/internal/catalog"
	"imgpipe/internal/catalog/catalogtest"
)

// biosDisk writes a small raw disk with MBR boot code (generation V1) and data.
func biosDisk(t *testing.T, dir string) {
	t.Helper()
	b := make([]byte, 4<<20)
	for i := 0; i < 440; i++ {
		b[i] = 0xEB
	}
	b[446], b[446+4] = 0x80, 0x83
	binary.LittleEndian.PutUint32(b[446+8:], 2048)
	b[510], b[511] = 0x55, 0xAA
	copy(b[1<<20:], strings.Repeat("imgpipe cli test ", 1000))
	if err := os.WriteFile(filepath.Join(dir, "disk.raw"), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestAzureVerbsAgainstEmulator drives plan, publish, check-deploy,
// replicate and destroy through the CLI, configured only by the environment
// `imgpipe emulator` prints.
func TestAzureVerbsAgainstEmulator(t *testing.T) {
	env := azemutest.StartWithAzurite(t, azemu.Options{})
	before := env.Server.ResourceIDs("")
	dir := cliEmulatorEnv(t, env)
	biosDisk(t, dir)
	pipeline := filepath.Join(dir, "pipeline.hcl")
	if err := os.WriteFile(pipeline, fmt.Appendf(nil, `
image "app" {
  source  = "disk.raw"
  os_type = "Linux"
}
azure "emu" {
  subscription   = %q
  resource_group = "rg-cli"
  location       = "westeurope"
  storage {
    account       = %q
    resource_group = "azemu-storage" # where the emulator registers its Azurite account
    container     = "vhds"
    blob_endpoint = %q
  }
  gallery    = "cli_gallery"
  definition = "app"
  version    = "next-patch"
  target_region "northeurope" {}
  replication_timeout = "1m"
}
onprem "lab" {
  library = "library"
}
`, env.SubscriptionID, env.Azurite.AccountName, env.Azurite.BlobEndpoint), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := runCLI(t, "plan", "-f", pipeline)
	if err != nil || !strings.Contains(out, "+ create    gallery") || !strings.Contains(out, "version 1.0.0") || !strings.Contains(out, "generation V1") {
		t.Fatalf("plan: %v\n%s", err, out)
	}
	_, err = runCLI(t, "plan", "-f", pipeline, "--detailed-exitcode")
	if exitStatus(err) != exitNegative {
		t.Fatalf("--detailed-exitcode: %v", err)
	}
	// without a terminal and without --yes nothing is applied
	if _, err := runCLI(t, "publish", "-f", pipeline); err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("publish without --yes: %v", err)
	}
	// publishes of one image are serialised by the catalog's image lock:
	// while another run holds it, publish waits and changes nothing
	cat := filepath.Join(dir, "catalog.db")
	held, err := catalog.Open(context.Background(), cat)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := held.LockImage(context.Background(), "app", "another-run")
	if err != nil {
		t.Fatal(err)
	}
	waitCtx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	root := newRootCmd()
	root.SetArgs([]string{"publish", "-f", pipeline, "--yes", "--catalog", cat})
	root.SetOut(io.Discard)
	root.SetErr(io.Discard)
	err = root.ExecuteContext(waitCtx)
	cancel()
	if err == nil || !strings.Contains(err.Error(), "lock image app") {
		t.Fatalf("publish while the image is locked: %v", err)
	}
	// (the emulator starts with its blob service's storage account and group)
	if ids := env.Server.ResourceIDs(""); !slices.Equal(ids, before) {
		t.Fatalf("publish changed Azure without the lock: %v, before %v", ids, before)
	}
	if err := lock.Unlock(context.Background()); err != nil {
		t.Fatal(err)
	}
	held.Close()
	// a replication timeout ends the waiting with status 3; a re-run resumes watching
	out, err = runCLI(t, "publish", "-f", pipeline, "--yes", "--replication-timeout", "1ms")
	if exitStatus(err) != exitStillReplicating || !strings.Contains(err.Error(), "run publish again") {
		t.Fatalf("publish with a tiny replication timeout: %v\n%s", err, out)
	}
	out, err = runCLI(t, "publish", "-f", pipeline, "--yes", "--catalog", cat)
	if err != nil || !strings.Contains(out, "published /subscriptions/") {
		t.Fatalf("publish: %v\n%s", err, out)
	}
	// the version and its lineage are in the catalog
	wantLineage := func(when string) {
		t.Helper()
		out, err := runCLI(t, "show", "app", "1.0.0", "--catalog", cat, "-o", "json")
		if err != nil {
			t.Fatalf("%s: show: %v\n%s", when, err, out)
		}
		got := lineageSummary(t, out)
		want := "artifact Present > [onprem Present, blob Succeeded > managed_image Succeeded > gallery_version Succeeded > [region northeurope Succeeded, region westeurope Succeeded]]"
		if got != want {
			t.Errorf("%s: lineage\n got %s\nwant %s\n%s", when, got, want, out)
		}
		if !strings.Contains(out, `"channels": [`+"\n"+`      "test"`) {
			t.Errorf("%s: channel test (the onprem block's) not on 1.0.0:\n%s", when, out)
		}
		if !regexp.MustCompile(`"fingerprint": "created:20\d\d-`).MatchString(out) {
			t.Errorf("%s: the managed image's fingerprint lacks its creation time:\n%s", when, out)
		}
		if !strings.Contains(out, `"artifact_sha256": "`) || !strings.Contains(out, `"hyperv_generation": "V1"`) || !strings.Contains(out, `"os_type": "Linux"`) {
			t.Errorf("%s: provenance missing:\n%s", when, out)
		}
	}
	wantLineage("after publish")
	// a re-run changes nothing and records no second copy
	if out, err := runCLI(t, "publish", "-f", pipeline, "--yes", "--catalog", cat); err != nil {
		t.Fatalf("second publish: %v\n%s", err, out)
	}
	wantLineage("after a second publish")
	// without a catalog the onprem destination is still served
	if out, err := runCLI(t, "publish", "-f", pipeline, "--yes", "--no-catalog"); err != nil ||
		!strings.Contains(out, "already in onprem library") || strings.Contains(out, "recorded in catalog") {
		t.Fatalf("publish --no-catalog: %v\n%s", err, out)
	}
	// prod needs a Succeeded gallery_version copy (the catalog has it) and a
	// passing test of the artifact: refused until one is recorded
	if out, err := runCLI(t, "promote", "app", "1.0.0", "--to", "prod", "--catalog", cat); err == nil || !strings.Contains(err.Error(), "passing test of its artifact") {
		t.Fatalf("untested version promoted to prod: %v\n%s", err, out)
	}
	catalogtest.TestedAt(t, cat, catalog.Ref{Image: "app", Version: "1.0.0"})
	if out, err := runCLI(t, "promote", "app", "1.0.0", "--to", "prod", "--catalog", cat); err != nil {
		t.Fatalf("promote to prod: %v\n%s", err, out)
	}
	// the run is in the catalog, with what each step made
	out, err = runCLI(t, "runs", "--catalog", cat, "-o", "json")
	if err != nil || !strings.Contains(out, `"kind": "publish"`) || !strings.Contains(out, "wait replication 1.0.0") {
		t.Fatalf("runs: %v\n%s", err, out)
	}
	out, err = runCLI(t, "plan", "-f", pipeline, "-o", "json")
	var plan struct {
		Version string `json:"version"`
		Steps   []struct{ Action string }
	}
	if err != nil || json.Unmarshal([]byte(out), &plan) != nil || plan.Version != "1.0.0" {
		t.Fatalf("plan json: %v\n%s", err, out)
	}
	for _, s := range plan.Steps {
		if s.Action != "keep" {
			t.Fatalf("after publish the plan still has %s:\n%s", s.Action, out)
		}
	}
	// deployable here, not from another subscription without a share
	if out, err := runCLI(t, "check-deploy", "1.0.0", "-f", pipeline, "--subscription", env.SubscriptionID, "--location", "northeurope"); err != nil {
		t.Fatalf("check-deploy: %v\n%s", err, out)
	}
	// once the catalog trusts a signing key, check-deploy verifies the
	// version's provenance: unsigned says no, signed says ok
	keys := filepath.Join(t.TempDir(), "signing")
	if out, err := runCLI(t, "key", "generate", "--out", keys); err != nil {
		t.Fatalf("key generate: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "key", "trust", keys+".pub.pem", "--catalog", cat); err != nil {
		t.Fatalf("key trust: %v\n%s", err, out)
	}
	out, err = runCLI(t, "check-deploy", "1.0.0", "-f", pipeline, "--subscription", env.SubscriptionID, "--location", "northeurope", "--catalog", cat)
	if exitStatus(err) != exitNegative || !strings.Contains(out, "provenance of app@1.0.0 does not verify") {
		t.Fatalf("check-deploy of an unsigned version with a trusted key: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "attest", "app", "1.0.0", "--key", keys+".pem", "--catalog", cat); err != nil {
		t.Fatalf("attest: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "check-deploy", "1.0.0", "-f", pipeline, "--subscription", env.SubscriptionID, "--location", "northeurope", "--catalog", cat); err != nil || !strings.Contains(out, "ok   provenance of app@1.0.0: signed by") {
		t.Fatalf("check-deploy of a signed version: %v\n%s", err, out)
	}
	out, err = runCLI(t, "check-deploy", "1.0.0", "-f", pipeline, "--subscription", "99999999-0000-4000-8000-000000000009", "--location", "japaneast")
	if exitStatus(err) != exitNegative || !strings.Contains(out, "imgpipe replicate") || !strings.Contains(out, "share {") {
		t.Fatalf("check-deploy elsewhere: %v\n%s", err, out)
	}
	if out, err := runCLI(t, "replicate", "1.0.0", "-f", pipeline, "--add-region", "japaneast", "--catalog", cat); err != nil || !strings.Contains(out, "replicated 1.0.0 to japaneast") {
		t.Fatalf("replicate: %v\n%s", err, out)
	}
	// the catalog follows: a third region copy
	out, err = runCLI(t, "show", "app", "1.0.0", "--catalog", cat, "-o", "json")
	if got := lineageSummary(t, out); err != nil || !strings.Contains(got, "region japaneast Succeeded, region northeurope Succeeded, region westeurope Succeeded") {
		t.Errorf("lineage after replicate: %v %s", err, got)
	}
	if out, err := runCLI(t, "destroy", "-f", pipeline, "--scope", "gallery", "--yes", "--catalog", cat); err != nil || !strings.Contains(out, "destroyed") {
		t.Fatalf("destroy: %v\n%s", err, out)
	}
	// the catalog knows: the gallery version and its regions are Deleted
	out, err = runCLI(t, "show", "app", "1.0.0", "--catalog", cat, "-o", "json")
	if got := lineageSummary(t, out); err != nil || !strings.Contains(got, "gallery_version Deleted > [region japaneast Deleted, region northeurope Deleted, region westeurope Deleted]") {
		t.Errorf("lineage after destroy: %v %s", err, got)
	}
	for _, id := range env.Server.ResourceIDs("") {
		if strings.Contains(strings.ToLower(id), "/galleries/") || strings.Contains(strings.ToLower(id), "/images/") {
			t.Errorf("left after destroy: %s", id)
		}
	}
}

// lineageSummary renders imgpipe show's JSON lineage as
// "kind State > kind State > [child, child]".
func lineageSummary(t *testing.T, showJSON string) string {
	t.Helper()
	type node struct {
		Kind     string  `json:"kind"`
		Location string  `json:"location"`
		State    string  `json:"state"`
		Children []*node `json:"children"`
	}
	var l struct {
		Lineage []*node `json:"lineage"`
	}
	if err := json.Unmarshal([]byte(showJSON), &l); err != nil {
		t.Fatalf("show json: %v", err)
	}
	var render func(ns []*node) string
	render = func(ns []*node) string {
		var parts []string
		for _, n := range ns {
			s := n.Kind + " " + n.State
			if n.Kind == "region" {
				s = n.Kind + " " + n.Location + " " + n.State
			}
			if len(n.Children) > 0 {
				s += " > " + render(n.Children)
			}
			parts = append(parts, s)
		}
		if len(parts) == 1 {
			return parts[0]
		}
		return "[" + strings.Join(parts, ", ") + "]"
	}
	return render(l.Lineage)
}
