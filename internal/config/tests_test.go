package config

import (
	"strings"
	"testing"
	"time"
)

const testsBase = `
image "web" {
  source  = "disk.vhdx"
  os_type = "Linux"
}
`

func TestTestBlocks(t *testing.T) {
	f, err := Parse([]byte(testsBase+`
test "smoke" {
  boot_timeout = "3m"
  boot_marker  = "login:"
  command "nginx" {
    run         = "systemctl is-active nginx"
    timeout     = "30s"
  }
  command "no-shell-history" {
    run         = "test -s /root/.bash_history"
    expect_exit = 1
  }
}
test "drift-only" {
  drift_clean = true
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	ts := f.TestsOf("web")
	if len(ts) != 2 {
		t.Fatalf("tests %+v", ts)
	}
	s := ts[0]
	if s.Name != "smoke" || s.BootTimeout != 3*time.Minute || s.BootMarker != "login:" || !s.DriftClean || len(s.Commands) != 2 {
		t.Fatalf("smoke %+v", s)
	}
	if c := s.Commands[1]; c.ExpectExit != 1 || c.Timeout != time.Minute {
		t.Fatalf("command %+v", c)
	}
	if ts[1].BootTimeout != 5*time.Minute || len(ts[1].Commands) != 0 {
		t.Fatalf("defaults %+v", ts[1])
	}
}

func TestTestBlocksRefused(t *testing.T) {
	for body, want := range map[string]string{
		`test "a" { boot_timeout = "forever" }`:                                                   "invalid boot_timeout",
		`test "a" { image = "db" }`:                                                               "unknown image",
		`test "a" {}` + "\n" + `test "a" {}`:                                                      "duplicate test",
		"test \"a\" {\ncommand \"x\" {\nrun = \"\"\n}\n}":                                         "invalid run",
		"test \"a\" {\ncommand \"x\" {\nrun = \"true\"\nexpect_exit = 300\n}\n}":                  "invalid expect_exit",
		"test \"a\" {\ncommand \"x\" {\nrun = \"true\"\n}\ncommand \"x\" {\nrun = \"true\"\n}\n}": "invalid command name",
		`test "a" { nonsense = 1 }`:                                                               "Unsupported argument",
		"test \"a\" {\ncommand \"x\" {\nrun = env(\"X\")\n}\n}":                                   "functions are not allowed",
	} {
		_, err := Parse([]byte(testsBase+body), "p.hcl")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", body, err, want)
		}
	}
}
