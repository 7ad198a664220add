package config

import (
	"strings"
	"testing"
	"time"
)

func TestRebuildBlock(t *testing.T) {
	f, err := Parse([]byte(testsBase+`
rebuild {
  on_drift {
    share         = 0.3
    channel       = "prod"
    for           = "2h"
    changed_files = 3
    packages      = true
  }
  on_revoke   = true
  on_parent   = true
  schedule    = "0 3 * * 1"
  cooldown    = "1d"
  max_per_day = 3
  promote_to  = "stable"
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	rb := f.Rebuild("web")
	if rb == nil {
		t.Fatal("no rebuild policy for web")
	}
	if rb.OnDrift == nil || rb.OnDrift.Share != 0.3 || rb.OnDrift.Channel != "prod" || rb.OnDrift.For != 2*time.Hour ||
		rb.OnDrift.ChangedFiles != 3 || !rb.OnDrift.Packages || rb.OnDrift.Hosts != 0 {
		t.Fatalf("on_drift %+v", rb.OnDrift)
	}
	if !rb.OnRevoke || !rb.OnParent || rb.Cooldown != 24*time.Hour || rb.MaxPerDay != 3 || rb.PromoteTo != "stable" {
		t.Fatalf("rebuild %+v", rb)
	}
	// Monday 2026-11-30 03:00 UTC follows Sunday 2026-11-29 12:00 UTC.
	next := rb.ScheduleSpec.Next(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	if want := time.Date(2026, 11, 30, 3, 0, 0, 0, time.UTC); !next.Equal(want) {
		t.Fatalf("next %v, want %v", next, want)
	}
}

func TestRebuildDefaults(t *testing.T) {
	f, err := Parse([]byte(testsBase+`
rebuild {
  on_drift { hosts = 12 }
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	rb := f.Rebuild("web")
	if rb.Cooldown != 6*time.Hour || rb.MaxPerDay != 2 || rb.PromoteTo != "prod" || rb.OnDrift.Channel != "prod" || rb.OnDrift.Hosts != 12 {
		t.Fatalf("defaults %+v %+v", rb, rb.OnDrift)
	}
	if rb.OnRevoke || rb.OnParent || rb.Schedule != "" {
		t.Fatalf("triggers on by default: %+v", rb)
	}
}

func TestRebuildErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"rebuild {\n  schedule = \"0 3 * *\"\n}", "p.hcl:9:14: invalid schedule"},
		{"rebuild {\n  on_revoke = true\n  cooldown = \"soon\"\n}", "p.hcl:10:14: invalid cooldown"},
		{"rebuild {\n  on_drift {\n    hosts = 2\n    share = 0.5\n  }\n}", "p.hcl:11:13: hosts and share"},
		{"rebuild {\n  on_drift {\n    share = 1.5\n  }\n}", "p.hcl:10:13: invalid share"},
		{"rebuild {\n  on_drift {\n    hosts = 0\n  }\n}", "p.hcl:10:13: invalid hosts"},
		{"rebuild {\n  on_drift {\n    hosts = 1\n    for = \"2 hours\"\n  }\n}", "p.hcl:11:11: invalid for"},
		{"rebuild {\n  on_drift {\n  }\n}", "p.hcl:9:3: how much drift"},
		{"rebuild {\n  cooldown = \"1h\"\n}", "p.hcl:8:1: rebuild never triggers"},
		{"rebuild {\n  on_revoke = true\n  max_per_day = 0\n}", "p.hcl:10:17: invalid max_per_day"},
		{"rebuild {\n  image = \"db\"\n  on_revoke = true\n}", "p.hcl:9:11: unknown image"},
		{"rebuild {\n  on_revoke = true\n}\nrebuild {\n  on_parent = true\n}", "p.hcl:11:1: duplicate rebuild block"},
		{"rebuild {\n  on_revoke = true\n  on_drift = 3\n}", "p.hcl:10:3: Unsupported argument"},
	} {
		_, err := Parse([]byte(testsBase+"\n\n"+tc.body), "p.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %s", tc.body, err, tc.want)
		}
	}
}
