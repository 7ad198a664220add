package drift

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCaptureTreeAndTexts: the capture flow's refusals, the identity and
// baseline it writes, the rules it applies, and the texts the CLI draws
// for the capture, the baseline and a drift report.
func TestCaptureTreeAndTexts(t *testing.T) {
	ctx := t.Context()
	root := t.TempDir()
	for _, f := range []string{"etc/app.conf", "etc/ssh/sshd_config", "usr/bin/tool", "usr/share/doc/x/README", "opt/skip"} {
		os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755)
		os.WriteFile(filepath.Join(root, f), []byte("content of "+f+"\n"), 0o644)
	}
	os.WriteFile(filepath.Join(root, "etc/os-release"), []byte("ID=debian\n"), 0o644)
	for _, tc := range []struct {
		c    TreeCapture
		want string
	}{
		{TreeCapture{}, "--root is required"},
		{TreeCapture{Root: filepath.Join(root, "etc/app.conf")}, "is not a directory"},
		{TreeCapture{Root: root, Identity: &Identity{Image: "web"}}, "--image and --version are required"},
		{TreeCapture{Root: root, Hash: "md5"}, "md5"},
	} {
		if _, err := CaptureTree(ctx, tc.c); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("CaptureTree(%+v) = %v, want an error saying %q", tc.c, err, tc.want)
		}
	}
	res, err := CaptureTree(ctx, TreeCapture{Root: root, Identity: &Identity{Image: "web", Version: "1.2.3", BuildID: "42"},
		Rules: Rules{Paths: []string{"etc", "usr"}, Exclude: []string{"usr/share/doc/**"}}})
	if err != nil {
		t.Fatal(err)
	}
	if res.BaselineFile != filepath.Join(root, "etc/imgpipe/baseline.bin") || res.Identity == nil || res.Identity.CapturedAt == "" ||
		res.IdentityFile != filepath.Join(root, "etc/imgpipe/identity.json") || res.OSRelease != filepath.Join(root, "etc/os-release") {
		t.Errorf("capture result %+v", res)
	}
	if want := []string{"etc", "usr"}; strings.Join(res.Rules.Paths, ",") != strings.Join(want, ",") || !contains(res.Rules.Exclude, "usr/share/doc/**") || !contains(res.Rules.Exclude, "etc/machine-id") {
		t.Errorf("rules %+v: want the paths given, the default excludes and the one added", res.Rules)
	}
	text := res.Text()
	for _, want := range []string{"identity: web 1.2.3 written to " + res.IdentityFile + " and " + res.OSRelease + "\n", "baseline: 9 entries (4 hashed", "packages: 0, services: 0\n"} {
		if !strings.Contains(text, want) {
			t.Errorf("capture text lacks %q:\n%s", want, text)
		}
	}
	js, _ := json.Marshal(res)
	for _, key := range []string{`"baseline_file"`, `"baseline_bytes"`, `"hash":"blake3"`, `"stats"`, `"packages":0`, `"services":0`, `"rules"`, `"identity"`, `"identity_file"`, `"os_release"`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("capture JSON lacks %s: %s", key, js)
		}
	}

	b, err := ReadBaselineFile(res.BaselineFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image:      web 1.2.3 (build 42, catalog )\n", "paths:      [etc usr]\n", "entries:    9\n"} {
		if !strings.Contains(b.Text(), want) {
			t.Errorf("baseline text lacks %q:\n%s", want, b.Text())
		}
	}
	rows := b.FileRows()
	if len(rows) != 9 || rows[0][0] != "etc" || rows[0][1] != "dir" || len(rows[0]) != len(FileHeader) {
		t.Errorf("file rows %v", rows)
	}
	var view struct {
		Entries int `json:"entries"`
		Files   []struct{ Path, Mode, Hash string }
		Hash    string `json:"hash"`
	}
	js, _ = json.Marshal(b.View(true))
	if err := json.Unmarshal(js, &view); err != nil || view.Entries != 9 || len(view.Files) != 9 || view.Hash != "blake3" || view.Files[0].Mode != "0755" {
		t.Errorf("view %s: %v", js, err)
	}
	if js, _ := json.Marshal(b.View(false)); strings.Contains(string(js), `"files"`) {
		t.Errorf("view without files lists them: %s", js)
	}

	// A clean check, then a drifted one, as text.
	r, err := CheckFile(ctx, root, "", 0, CheckOptions{})
	if err != nil || r.Drifted || !strings.HasPrefix(r.Text(), "image web 1.2.3, baseline of ") || !strings.Contains(r.Text(), "no drift: 0 added, 0 removed, 0 changed") {
		t.Fatalf("clean check: %v\n%s", err, r.Text())
	}
	time.Sleep(10 * time.Millisecond)
	os.WriteFile(filepath.Join(root, "etc/app.conf"), []byte("edited\n"), 0o644)
	os.Chmod(filepath.Join(root, "usr/bin/tool"), 0o755)
	os.WriteFile(filepath.Join(root, "etc/new.conf"), nil, 0o644)
	os.Remove(filepath.Join(root, "etc/ssh/sshd_config"))
	r, err = CheckFile(ctx, root, res.BaselineFile, 0, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"changed  etc/app.conf (content, size)\n", "changed  usr/bin/tool (mode): mode 0644 -> 0755\n", "added    etc/new.conf (file)\n", "removed  etc/ssh/sshd_config (file)\n", "DRIFTED: 1 added, 1 removed, 2 changed files"} {
		if !strings.Contains(r.Text(), want) {
			t.Errorf("drift text lacks %q:\n%s", want, r.Text())
		}
	}
	r, err = CheckFile(ctx, root, res.BaselineFile, 1, CheckOptions{})
	if err != nil || len(r.Files) != 1 || !strings.Contains(r.Text(), "(3 findings left out by --limit)") {
		t.Errorf("limit 1: %v\n%s", err, r.Text())
	}
	if _, err := CheckFile(ctx, root, filepath.Join(root, "nope"), 0, CheckOptions{}); err == nil {
		t.Error("check against a missing baseline succeeded")
	}
}

func TestProblemsText(t *testing.T) {
	var ps []Problem
	for i := range 23 {
		ps = append(ps, Problem{Path: Name("f" + string(rune('a'+i))), Err: "unreadable"})
	}
	var w strings.Builder
	writeProblems(&w, ps, 20)
	s := w.String()
	if !strings.HasPrefix(s, "problems: 23 entries could not be fully examined\n  fa: unreadable\n") || !strings.HasSuffix(s, "  ft: unreadable\n  ... 3 more (use --output json for all)\n") {
		t.Errorf("problems text:\n%s", s)
	}
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
