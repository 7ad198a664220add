package agent

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestReadToken(t *testing.T) {
	dir := t.TempDir()
	open, private, empty := filepath.Join(dir, "open"), filepath.Join(dir, "private"), filepath.Join(dir, "empty")
	for p, mode := range map[string]os.FileMode{open: 0o644, private: 0o600, empty: 0o600} {
		body := " from-file\n"
		if p == empty {
			body = "\n"
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("IMGPIPE_TEST_TOKEN", " from-env ")
	for _, tc := range []struct {
		flag, file string
		private    bool
		want, err  string
	}{
		{flag: "from-flag", file: open, want: "from-flag"},
		{file: private, private: true, want: "from-file"},
		{file: open, want: "from-file"},
		{file: open, private: true, err: "readable by group or others"},
		{file: empty, err: "is empty"},
		{file: filepath.Join(dir, "missing"), err: "read the token file"},
		{want: "from-env"},
	} {
		got, err := ReadToken(tc.flag, tc.file, "IMGPIPE_TEST_TOKEN", tc.private)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%+v: %q %v, want an error saying %q", tc, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%+v: %q %v, want %q", tc, got, err, tc.want)
		}
	}
}

func TestHTTPClientCAFile(t *testing.T) {
	if c, err := HTTPClient("", time.Second); err != nil || c.Timeout != time.Second || c.Transport != nil {
		t.Fatalf("no CA file: %+v %v", c, err)
	}
	bad := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(bad, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := HTTPClient(bad, time.Second); err == nil || !strings.Contains(err.Error(), "no PEM certificate") {
		t.Fatalf("a CA file without a certificate: %v", err)
	}
}

func TestDefaultCredentialFileIsIgnored(t *testing.T) {
	o := Options{Root: "/srv/root"}
	o.DefaultCredentialFile()
	if !strings.HasPrefix(o.CredentialFile, "/srv/root/") || len(o.Ignore) != 1 || !strings.HasSuffix(o.Ignore[0], "agent.credential") {
		t.Fatalf("%+v", o)
	}
	o.DefaultCredentialFile() // set: unchanged
	if len(o.Ignore) != 1 {
		t.Fatalf("ignored twice: %v", o.Ignore)
	}
}

func TestReportLine(t *testing.T) {
	r := Report{Host: "web-1", Platform: "onprem", Image: "web", Version: "1.2.0", Depth: "quick", Drifted: true}
	r.Summary.FilesChanged = 2
	if got := r.Line(false); got != "web 1.2.0 on web-1 (onprem): DRIFTED: 0 added, 0 removed, 2 changed files, 0 package and 0 service changes, 0 problems (quick check); report NOT sent" {
		t.Fatalf("%q", got)
	}
}
