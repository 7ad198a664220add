package config

import (
	"strings"
	"testing"
)

func TestChannelBlocks(t *testing.T) {
	f, err := Parse([]byte(testsBase+`
image "db" {
  source  = "db.vhdx"
  os_type = "Linux"
}
channel "prod" {
  requires = ["gallery_version:Succeeded", "tested"]
}
channel "prod" {
  image    = "db"
  requires = []
}
`), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	web := f.ChannelOf("web", "prod")
	if web == nil || len(web.Requires) != 2 || web.Requires[0] != (ChannelRequirement{Kind: "gallery_version", State: "Succeeded"}) || web.Requires[1].String() != "tested" {
		t.Fatalf("web prod: %+v", web)
	}
	if src := web.Source(); src != `channel "prod" at p.hcl:11` {
		t.Errorf("source %q", src)
	}
	db := f.ChannelOf("db", "prod")
	if db == nil || db.Image != "db" || db.Requires == nil || len(db.Requires) != 0 {
		t.Fatalf("db prod (requires nothing): %+v", db)
	}
	if f.ChannelOf("web", "test") != nil {
		t.Error("an undeclared channel has a block")
	}
}

func TestChannelBlockErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`channel "prod" { requires = ["tested", "tested"] }`, "invalid requirement"},
		{`channel "prod" { requires = ["signed"] }`, `"signed": each entry is one of artifact`},
		{`channel "prod" { requires = ["tested:Succeeded"] }`, "not for tested"},
		{"channel \"prod\" {\n  image = \"nope\"\n  requires = []\n}", `names image "nope"`},
		{`channel "prod" { requires = [] }
channel "prod" { requires = ["tested"] }`, "declared twice"},
		{`channel "bad name" { requires = [] }`, "invalid channel name"},
		{`channel "prod" {}`, "requires"},
	} {
		_, err := Parse([]byte(testsBase+tc.body), "p.hcl")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.body, err, tc.want)
		}
	}
}
