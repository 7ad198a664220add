//go:build linux

package drift

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// badName is a file name that is not valid UTF-8.
const badName = "caf\xe9-\xff.conf"

// buildTree makes an image-like tree with thousands of files and every kind
// of awkward entry. It returns the rules that cover it.
func buildTree(t *testing.T, root string, files int) Rules {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel, data string, mode os.FileMode) {
		p := filepath.Join(root, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, []byte(data), mode))
		must(os.Chmod(p, mode))
	}
	for i := range files {
		write(fmt.Sprintf("usr/share/pkg%02d/file-%04d.txt", i%40, i), strings.Repeat(fmt.Sprintf("line %d\n", i), 1+i%50), 0o644)
	}
	for i := range 20 {
		write(fmt.Sprintf("etc/app/conf-%03d", i), fmt.Sprintf("setting=%d\n", i), 0o644)
	}
	write("etc/app/big.bin", strings.Repeat("0123456789abcdef", 1<<16), 0o644) // 1 MiB, several reads
	write("etc/"+badName, "accent\n", 0o644)
	write("etc/hl-a", "hard linked\n", 0o644)
	must(os.Link(filepath.Join(root, "etc/hl-a"), filepath.Join(root, "etc/hl-b")))
	must(os.Symlink("app/conf-000", filepath.Join(root, "etc/link")))
	must(os.Symlink("/nonexistent/target", filepath.Join(root, "etc/dangling")))
	must(os.Symlink("/", filepath.Join(root, "etc/to-host-root"))) // must never be followed
	must(unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o600))
	ln, err := net.Listen("unix", filepath.Join(root, "etc/sock"))
	must(err)
	t.Cleanup(func() { ln.Close() })
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(root, "etc/null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	}
	write("etc/secret", "unreadable\n", 0o000)
	// os-release as on Debian: a relative link into usr/lib.
	write("usr/lib/os-release", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nIMAGE_ID=stale\n", 0o644)
	must(os.Symlink("../usr/lib/os-release", filepath.Join(root, "etc/os-release")))
	// Packages and services.
	write("var/lib/dpkg/status", dpkgStatus, 0o644)
	write("lib/systemd/system/ssh.service", "[Unit]\nDescription=ssh\n[Service]\nExecStart=/usr/sbin/sshd\n[Install]\nWantedBy=multi-user.target\n", 0o644)
	write("lib/systemd/system/nginx.service", "[Service]\nExecStart=/usr/sbin/nginx\n[Install]\nWantedBy=multi-user.target\n", 0o644)
	write("lib/systemd/system/systemd-journald.service", "[Service]\nExecStart=/lib/systemd/systemd-journald\n", 0o644)
	must(os.MkdirAll(filepath.Join(root, "etc/systemd/system/multi-user.target.wants"), 0o755))
	must(os.Symlink("/lib/systemd/system/ssh.service", filepath.Join(root, "etc/systemd/system/multi-user.target.wants/ssh.service")))
	// Churn that the default excludes leave out.
	write("var/log/syslog", "boot\n", 0o644)
	return Rules{Paths: []string{"etc", "usr", "srv"}, Exclude: DefaultExcludes("linux")}
}

// waitRacy sleeps until files written so far are older than the racy window
// of a capture started now, so a quick check trusts them.
func waitRacy() { time.Sleep(RacyWindow + 100*time.Millisecond) }

func findEntry(t *testing.T, b *Baseline, p string) *Entry {
	t.Helper()
	i, ok := slices.BinarySearchFunc(b.Files, Name(p), func(e Entry, n Name) int { return strings.Compare(string(e.Path), string(n)) })
	if !ok {
		t.Fatalf("baseline has no entry %q", p)
	}
	return &b.Files[i]
}

// summarize renders file changes as "kind path attrs" lines for comparison.
func summarize(r *Report) []string {
	var out []string
	for _, f := range r.Files {
		out = append(out, strings.TrimSpace(fmt.Sprintf("%s %s %s", f.Kind, f.Path.String(), strings.Join(f.Changed, ","))))
	}
	for _, p := range r.Packages {
		out = append(out, fmt.Sprintf("package %s %s %s %s->%s", p.Kind, p.Name, p.Arch, p.Old, p.New))
	}
	for _, s := range r.Services {
		out = append(out, fmt.Sprintf("service %s %s %s->%s", s.Kind, s.Unit, s.Old, s.New))
	}
	return out
}

func TestCaptureAndCheck(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	rules := buildTree(t, root, 3000)
	isRoot := os.Geteuid() == 0
	if isRoot {
		t.Log("running as root: etc/secret (mode 000) is readable, so the unreadable-file case is not exercised")
	}

	res, err := WriteIdentity(root, Identity{Image: "Web Server", Version: "1.4.0", BuildID: "b-7"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OSRelease != filepath.Join(root, "usr/lib/os-release") {
		t.Errorf("os-release edited at %q, want the link's target inside the root", res.OSRelease)
	}
	if fi, err := os.Lstat(filepath.Join(root, "etc/os-release")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("etc/os-release is no longer a symlink")
	}
	osr, _ := os.ReadFile(filepath.Join(root, "usr/lib/os-release"))
	if want := "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nIMAGE_ID=web-server\nIMAGE_VERSION=1.4.0\n"; string(osr) != want {
		t.Errorf("os-release =\n%s\nwant\n%s", osr, want)
	}

	waitRacy()
	base, err := Capture(ctx, root, CaptureOptions{Rules: rules, Identity: &Identity{Image: "Web Server", Version: "1.4.0"}, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	// The baseline goes through its file format, as it does in real use.
	path := filepath.Join(root, "etc/imgpipe/baseline.bin")
	if _, err := WriteBaselineFile(path, base); err != nil {
		t.Fatal(err)
	}
	if base, err = ReadBaselineFile(path); err != nil {
		t.Fatal(err)
	}

	// What the capture saw.
	wantTypes := map[string]FileType{
		"etc/fifo": TypeFIFO, "etc/sock": TypeSocket, "etc/link": TypeSymlink,
		"etc/dangling": TypeSymlink, "etc/to-host-root": TypeSymlink, "etc/" + badName: TypeRegular,
		"etc/hl-a": TypeRegular, "etc/hl-b": TypeRegular, "etc/app": TypeDir,
	}
	if isRoot {
		wantTypes["etc/null"] = TypeCharDev
	}
	for p, typ := range wantTypes {
		if e := findEntry(t, base, p); e.Type != typ {
			t.Errorf("%s: type %v, want %v", p, e.Type, typ)
		}
	}
	if e := findEntry(t, base, "etc/to-host-root"); e.Link != "/" {
		t.Errorf("symlink target %q, want /", e.Link)
	}
	for _, p := range []string{"etc/fifo", "etc/sock", "etc/link"} {
		if findEntry(t, base, p).HasHash {
			t.Errorf("%s was hashed: only regular files are opened", p)
		}
	}
	a, b := findEntry(t, base, "etc/hl-a"), findEntry(t, base, "etc/hl-b")
	if !a.HasHash || a.Hash != b.Hash || a.Nlink != 2 {
		t.Errorf("hard links: %+v %+v", a, b)
	}
	if base.Stats.Hashed != countHashed(base)-1 {
		t.Errorf("hashed %d files for %d hashed entries: a hard link pair must be read once", base.Stats.Hashed, countHashed(base))
	}
	if e := findEntry(t, base, "etc/secret"); isRoot != e.HasHash {
		t.Errorf("etc/secret: hashed=%v as uid %d", e.HasHash, os.Geteuid())
	} else if !isRoot && !slices.ContainsFunc(base.Problems, func(p Problem) bool { return p.Path == "etc/secret" }) {
		t.Errorf("unreadable etc/secret not reported as a problem: %v", base.Problems)
	}
	for _, p := range base.Files {
		if strings.HasPrefix(string(p.Path), "etc/imgpipe") || strings.HasPrefix(string(p.Path), "var/") {
			t.Errorf("excluded or out-of-scope path recorded: %s", p.Path)
		}
	}
	if n := len(base.Files); n < 3000 {
		t.Errorf("only %d entries recorded", n)
	}
	if len(base.Packages) != 2 || base.Packages[1].Version != "1:9.2p1-2+deb12u2" {
		t.Errorf("packages: %+v", base.Packages)
	}
	wantSvc := []Service{{Unit: "nginx.service", State: "disabled"}, {Unit: "ssh.service", State: "enabled", WantedBy: []string{"multi-user.target"}}, {Unit: "systemd-journald.service", State: "static"}}
	if fmt.Sprint(base.Services) != fmt.Sprint(wantSvc) {
		t.Errorf("services %+v, want %+v", base.Services, wantSvc)
	}

	// No drift, at both depths; the quick check reads nothing.
	for _, depth := range []Depth{Full, Quick} {
		r, err := Check(ctx, root, base, CheckOptions{Depth: depth, Workers: 3})
		if err != nil {
			t.Fatal(err)
		}
		if r.Drifted || len(r.Files) > 0 {
			t.Fatalf("%s check of an untouched tree: %v", depth, summarize(r))
		}
		if depth == Quick && r.Stats.Hashed != 0 {
			t.Errorf("quick check of an untouched tree hashed %d files, want 0", r.Stats.Hashed)
		}
	}

	// Drift.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	p := func(rel string) string { return filepath.Join(root, rel) }
	must(os.WriteFile(p("etc/app/conf-001"), []byte("setting=1 changed\n"), 0o644))
	// Same size, same mtime: only the content (and the ctime) changes.
	fi, _ := os.Stat(p("etc/app/conf-002"))
	must(os.WriteFile(p("etc/app/conf-002"), []byte("setting=X\n"), 0o644))
	must(os.Chtimes(p("etc/app/conf-002"), fi.ModTime(), fi.ModTime()))
	must(os.WriteFile(p("etc/app/new.conf"), []byte("new\n"), 0o644))
	must(os.Remove(p("etc/app/conf-003")))
	must(os.Chmod(p("etc/app/conf-004"), 0o600))
	must(os.Remove(p("etc/link")))
	must(os.Symlink("app/conf-005", p("etc/link")))
	must(os.WriteFile(p("etc/"+badName), []byte("ACCENT\n"), 0o644))
	must(os.WriteFile(p("etc/hl-b"), []byte("hard LINKED\n"), 0o644)) // both names change
	must(os.Remove(p("etc/app/conf-006")))
	must(os.Symlink("conf-000", p("etc/app/conf-006")))
	must(os.RemoveAll(p("usr/share/pkg07")))
	must(os.WriteFile(p("var/log/syslog"), []byte("churn\n"), 0o644)) // ignored
	st, _ := os.ReadFile(p("var/lib/dpkg/status"))
	st = bytes.Replace(st, []byte("Version: 12.4+deb12u5"), []byte("Version: 12.4+deb12u6"), 1)
	st = append(st, "Package: nginx\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.22.1-9\n\n"...)
	must(os.WriteFile(p("var/lib/dpkg/status"), st, 0o644))
	must(os.Symlink("/lib/systemd/system/nginx.service", p("etc/systemd/system/multi-user.target.wants/nginx.service")))
	want := []string{
		"changed etc/app/conf-001 content,size",
		"changed etc/app/conf-002 content",
		"removed etc/app/conf-003",
		"changed etc/app/conf-004 mode",
		"changed etc/app/conf-006 type",
		"added etc/app/new.conf",
		"changed etc/caf\\xe9-\\xff.conf content",
		"changed etc/hl-a content",
		"changed etc/hl-b content",
		"changed etc/link target",
		"added etc/systemd/system/multi-user.target.wants/nginx.service",
	}
	if isRoot {
		must(os.Lchown(p("etc/app/conf-007"), 1234, 1234))
		want = append(want, "changed etc/app/conf-007 owner")
	}
	want = append(want, "removed usr/share/pkg07")
	for i := 7; i < 3000; i += 40 {
		want = append(want, fmt.Sprintf("removed usr/share/pkg07/file-%04d.txt", i))
	}
	want = append(want,
		"package changed base-files amd64 12.4+deb12u5->12.4+deb12u6",
		"package added nginx amd64 ->1.22.1-9",
		"service changed nginx.service disabled->enabled (multi-user.target)",
	)
	sort.Strings(want[:len(want)-3])
	for _, depth := range []Depth{Full, Quick} {
		r, err := Check(ctx, root, base, CheckOptions{Depth: depth})
		if err != nil {
			t.Fatal(err)
		}
		got := summarize(r)
		sortFiles := got[:len(r.Files)]
		sort.Strings(sortFiles)
		if !slices.Equal(got, want) {
			t.Errorf("%s check:\n got %q\nwant %q", depth, got, want)
		}
		if !r.Drifted {
			t.Errorf("%s check: not drifted", depth)
		}
		if depth == Quick && r.Stats.Hashed > 20 {
			t.Errorf("quick check hashed %d files; only the changed ones need it", r.Stats.Hashed)
		}
		// The report survives JSON, non-UTF-8 name included.
		data, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back Report
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatal(err)
		}
		if !slices.ContainsFunc(back.Files, func(f FileChange) bool { return f.Path == "etc/"+badName }) {
			t.Errorf("non-UTF-8 name lost in the JSON report: %s", data)
		}
		// Ignoring expected churn at check time.
		r, err = Check(ctx, root, base, CheckOptions{Depth: depth, Ignore: []string{"usr/share/**", "etc/app", "*.conf"}})
		if err != nil {
			t.Fatal(err)
		}
		wantIgnored := []string{"changed etc/hl-a content", "changed etc/hl-b content", "changed etc/link target",
			"added etc/systemd/system/multi-user.target.wants/nginx.service"}
		got = summarize(r)[:len(r.Files)]
		sort.Strings(got)
		sort.Strings(wantIgnored)
		if !slices.Equal(got, wantIgnored) {
			t.Errorf("%s check with ignores: got %q, want %q", depth, got, wantIgnored)
		}
	}
}

func countHashed(b *Baseline) int {
	n := 0
	for _, e := range b.Files {
		if e.HasHash {
			n++
		}
	}
	return n
}

// A baseline captured right after the files were written is "racy": the quick
// check must not trust those stats and re-hashes the files.
func TestQuickCheckRehashesRacyFiles(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	for i := range 50 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("f%02d", i)), []byte("x"), 0o644)
	}
	base, err := Capture(ctx, root, CaptureOptions{Rules: Rules{Paths: []string{"."}}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Check(ctx, root, base, CheckOptions{Depth: Quick})
	if err != nil {
		t.Fatal(err)
	}
	if r.Stats.Hashed != 50 || r.Stats.Reused != 0 {
		t.Errorf("quick check of racy entries: hashed %d reused %d, want 50 and 0", r.Stats.Hashed, r.Stats.Reused)
	}
	captured := base.CapturedAt
	base.CapturedAt = captured.Add(time.Hour) // as if captured long after the files were written
	r, _ = Check(ctx, root, base, CheckOptions{Depth: Quick})
	if r.Stats.Hashed != 0 || r.Stats.Reused != 50 {
		t.Errorf("quick check of settled entries: hashed %d reused %d, want 0 and 50", r.Stats.Hashed, r.Stats.Reused)
	}
	base.CapturedAt = captured.Add(-time.Hour) // files newer than the capture
	r, _ = Check(ctx, root, base, CheckOptions{Depth: Quick})
	if r.Stats.Hashed != 50 {
		t.Errorf("files newer than the capture must be re-hashed, got %d", r.Stats.Hashed)
	}
}

// The race checks of hashFile: a regular file swapped for a FIFO or removed
// between lstat and open is reported, never blocks, never follows a symlink.
func TestHashFileRaces(t *testing.T) {
	dir := t.TempDir()
	d, err := openRootDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.release()
	h, _ := newHasher(HashSHA256)
	buf := make([]byte, 4096)
	tests := []struct {
		name string
		swap func(p string)
		want func(error) bool
	}{
		{"fifo", func(p string) { os.Remove(p); unix.Mkfifo(p, 0o644) }, func(err error) bool { return err == errReplaced }},
		{"symlink", func(p string) { os.Remove(p); os.Symlink("/etc/passwd", p) }, func(err error) bool { return err != nil }},
		{"other file", func(p string) { os.WriteFile(p+".new", []byte("y"), 0o644); os.Rename(p+".new", p) }, func(err error) bool { return err == errReplaced }},
		{"vanished", func(p string) { os.Remove(p) }, isNotExist},
		{"unchanged", func(p string) {}, func(err error) bool { return err == nil }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, "f")
			os.Remove(p)
			if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			st, err := d.lstat("f")
			if err != nil {
				t.Fatal(err)
			}
			tc.swap(p)
			done := make(chan error, 1)
			go func() { _, _, err := d.hashFile("f", st, h, buf); done <- err }()
			select {
			case err := <-done:
				if !tc.want(err) {
					t.Errorf("hashFile after %s: %v", tc.name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("hashFile blocked")
			}
		})
	}
}

func TestIdentityAbsoluteLinkStaysInRoot(t *testing.T) {
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("ID=debian\n# comment\nIMAGE_VERSION=0\nIMAGE_VERSION=dup\n"), 0o644)
	// An absolute link: on the host it would point at the host's file.
	os.Symlink("/usr/lib/os-release", filepath.Join(root, "etc/os-release"))
	host, _ := os.ReadFile("/usr/lib/os-release")
	res, err := WriteIdentity(root, Identity{Image: "img", Version: "2 beta"})
	if err != nil {
		t.Fatal(err)
	}
	if res.OSRelease != filepath.Join(root, "usr/lib/os-release") {
		t.Errorf("edited %s", res.OSRelease)
	}
	got, _ := os.ReadFile(filepath.Join(root, "usr/lib/os-release"))
	if want := "ID=debian\n# comment\nIMAGE_VERSION=\"2 beta\"\nIMAGE_ID=img\n"; string(got) != want {
		t.Errorf("os-release:\n%s\nwant:\n%s", got, want)
	}
	if after, _ := os.ReadFile("/usr/lib/os-release"); !bytes.Equal(host, after) {
		t.Fatal("the host's os-release was modified")
	}
	id, err := ReadIdentity(root)
	if err != nil || id.Image != "img" || id.Version != "2 beta" {
		t.Errorf("ReadIdentity: %+v %v", id, err)
	}
	if _, err := WriteIdentity(root, Identity{Image: "x"}); err == nil {
		t.Error("identity without a version accepted")
	}
}

// A directory that cannot be listed at check time is a problem, and what the
// baseline had below it is unknown, not removed.
func TestUnlistableDirectory(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root can list a mode-000 directory; run as another user to exercise this")
	}
	ctx := context.Background()
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "d/sub"), 0o755)
	for i := range 5 {
		os.WriteFile(filepath.Join(root, fmt.Sprintf("d/sub/f%d", i)), []byte("x"), 0o644)
	}
	base, err := Capture(ctx, root, CaptureOptions{Rules: Rules{Paths: []string{"."}}})
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(root, "d/sub"), 0)
	defer os.Chmod(filepath.Join(root, "d/sub"), 0o755)
	r, err := Check(ctx, root, base, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summarize(r); fmt.Sprint(got) != "[changed d/sub mode]" {
		t.Errorf("files: %q", got)
	}
	if len(r.Problems) != 1 || r.Problems[0].Path != "d/sub" {
		t.Errorf("problems: %+v", r.Problems)
	}
}
