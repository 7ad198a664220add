package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVerbWiring: the verbs whose flows live in internal/ (onprem,
// supplychain, events, drift, disk) and that no other CLI test runs, each
// once through the CLI, text and -o json: the flags reach the flow and the
// answer is drawn.
func TestVerbWiring(t *testing.T) {
	dir := t.TempDir()
	loc := filepath.Join(dir, "catalog.db")
	mustRun := func(args ...string) string {
		t.Helper()
		out, err := runCLI(t, args...)
		if err != nil {
			t.Fatalf("imgpipe %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	if out := mustRun("version", "-o", "json"); !strings.Contains(out, `"version": "dev"`) {
		t.Errorf("version -o json:\n%s", out)
	}
	if out := mustRun("version"); !strings.HasPrefix(out, "imgpipe dev (revision ") {
		t.Errorf("version:\n%s", out)
	}

	// key generate -o json, trust, list (table and JSON)
	var kj map[string]string
	if err := json.Unmarshal([]byte(mustRun("key", "generate", "--out", filepath.Join(dir, "k"), "-o", "json")), &kj); err != nil ||
		kj["key_id"] == "" || kj["private_key"] != filepath.Join(dir, "k.pem") || kj["public_key"] != filepath.Join(dir, "k.pub.pem") {
		t.Fatalf("key generate -o json: %v, %v", kj, err)
	}
	mustRun("key", "trust", kj["public_key"], "--by", "ops", "--catalog", loc)
	if out := mustRun("key", "list", "--catalog", loc); !strings.Contains(out, kj["key_id"]) || !strings.Contains(out, "ops") {
		t.Errorf("key list:\n%s", out)
	}
	if _, err := runCLI(t, "attest", "web", "1.0.0", "--param", "novalue", "--catalog", loc); err == nil || !strings.Contains(err.Error(), "NAME=VALUE") {
		t.Errorf("attest --param novalue: %v", err)
	}

	// webhook add, list -o json, remove
	mustRun("webhook", "add", "ops", "https://hooks.internal/x", "--type", "dev.imgpipe.drift", "--catalog", loc)
	if _, err := runCLI(t, "webhook", "add", "bad", "ftp://x", "--catalog", loc); err == nil || !strings.Contains(err.Error(), "http(s) URL") {
		t.Errorf("webhook add ftp: %v", err)
	}
	var hooks []struct {
		Name    string
		Types   []string
		Pending int
	}
	if err := json.Unmarshal([]byte(mustRun("webhook", "list", "-o", "json", "--catalog", loc)), &hooks); err != nil || len(hooks) != 1 || hooks[0].Name != "ops" || hooks[0].Types[0] != "dev.imgpipe.drift" {
		t.Errorf("webhook list -o json: %+v, %v", hooks, err)
	}
	mustRun("webhook", "remove", "ops", "--catalog", loc)
	if out := mustRun("webhook", "list", "--catalog", loc); strings.Contains(out, "ops") {
		t.Errorf("after remove:\n%s", out)
	}
	if out := mustRun("webhook", "deliver", "--catalog", loc); out != "delivered 0, failed 0 (retried later)\n" {
		t.Errorf("webhook deliver: %q", out)
	}

	// baseline capture -o json, show --files (table and JSON), drift check --limit
	root := filepath.Join(dir, "tree")
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/a.conf"), []byte("a\n"), 0o644)
	var capt struct {
		BaselineFile string `json:"baseline_file"`
		Hash         string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(mustRun("baseline", "capture", "--root", root, "--no-identity", "--path", "etc", "--hash", "sha256", "-o", "json")), &capt); err != nil || capt.Hash != "sha256" || capt.BaselineFile != filepath.Join(root, "etc/imgpipe/baseline.bin") {
		t.Errorf("baseline capture -o json: %+v, %v", capt, err)
	}
	if out := mustRun("baseline", "show", "--files", capt.BaselineFile); !strings.Contains(out, "PATH") || !strings.Contains(out, "etc/a.conf") {
		t.Errorf("baseline show --files:\n%s", out)
	}
	var view struct {
		Entries int
		Files   []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(mustRun("baseline", "show", "--files", "-o", "json", capt.BaselineFile)), &view); err != nil || view.Entries != 2 || len(view.Files) != 2 {
		t.Errorf("baseline show --files -o json: %+v, %v", view, err)
	}
	os.WriteFile(filepath.Join(root, "etc/b.conf"), nil, 0o644)
	os.WriteFile(filepath.Join(root, "etc/c.conf"), nil, 0o644)
	out, err := runCLI(t, "drift", "check", "--root", root, "--limit", "1")
	if exitStatus(err) != exitNegative || !strings.Contains(out, "(1 findings left out by --limit)") || !strings.Contains(out, "DRIFTED: 2 added") {
		t.Errorf("drift check --limit 1: %v\n%s", err, out)
	}

	// onprem list (table), verify -o json, disk inspect (table)
	lib := filepath.Join(dir, "lib")
	raw := filepath.Join(dir, "web.raw")
	bootableRaw(t, raw, 4<<20, "web")
	mustRun("onprem", "add", "--library", lib, "--image", "web", "--version", "1.0", "--format", "keep", raw)
	if out := mustRun("onprem", "list", "--library", lib); !strings.Contains(out, "IMAGE") || !strings.Contains(out, "latest") || !strings.Contains(out, "4.0 MiB") {
		t.Errorf("onprem list:\n%s", out)
	}
	var vs []struct {
		Image, Version string
		OK             bool
	}
	if err := json.Unmarshal([]byte(mustRun("onprem", "verify", "--library", lib, "-o", "json")), &vs); err != nil || len(vs) != 1 || !vs[0].OK {
		t.Errorf("onprem verify -o json: %+v, %v", vs, err)
	}
	if _, err := runCLI(t, "onprem", "add", "--library", lib, "--image", "web", "--version", "1.1", "--format", "qcow2", raw); err == nil || !strings.Contains(err.Error(), "use vhdx or keep") {
		t.Errorf("--format qcow2: %v", err)
	}
	if out := mustRun("disk", "inspect", raw); !strings.Contains(out, "virtual size  4.00 MiB (4194304 bytes)") || !strings.Contains(out, "azure ready   no") || !strings.Contains(out, "fix: ") {
		t.Errorf("disk inspect:\n%s", out)
	}
}
