package config

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const sub = "00000000-0000-0000-0000-000000000001"

const minimal = `
image "web" {
  source  = "disk.vhdx"
  os_type = "linux"
}
azure "prod" {
  subscription   = "` + sub + `"
  resource_group = "rg"
  location       = "West Europe"
  storage {
    account   = "acct"
    container = "vhds"
  }
  gallery    = "gal"
  definition = "web"
  version    = "1.2.3"
  target_region "northeurope" {
    replicas = 2
    storage_account_type = "standard_zrs"
  }
}
`

func TestParseMinimal(t *testing.T) {
	f, err := Parse([]byte(minimal), "/tmp/x/pipeline.hcl")
	if err != nil {
		t.Fatal(err)
	}
	img := f.Images[0]
	if img.Source != "/tmp/x/disk.vhdx" || img.OSType != "Linux" || img.OSState != "Generalized" ||
		img.SecurityType != "Standard" || img.Architecture != "x64" || img.HyperVGeneration != "" {
		t.Fatalf("image = %+v", img)
	}
	a := f.Azure[0]
	if a.Image != "web" || a.Location != "westeurope" || a.Upload != "blob" || !a.ManagedImage || !a.KeepManagedImage {
		t.Fatalf("azure = %+v", a)
	}
	if a.Storage.ResourceGroup != "rg" {
		t.Fatalf("storage rg = %q", a.Storage.ResourceGroup)
	}
	if len(a.TargetRegions) != 2 || a.TargetRegions[0].Name != "westeurope" || a.TargetRegions[1].Name != "northeurope" ||
		a.TargetRegions[1].Replicas != 2 || a.TargetRegions[1].StorageAccountType != "Standard_ZRS" {
		t.Fatalf("regions = %+v", a.TargetRegions)
	}
	if a.ReplicationTimeout != 3*time.Hour {
		t.Fatalf("timeout = %v", a.ReplicationTimeout)
	}
}

func TestExampleParses(t *testing.T) {
	f, err := Load(filepath.Join("..", "..", "examples", "pipeline.hcl"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.AzureTarget("")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version != "next-patch" || len(a.TargetRegions) != 2 || a.ReplicationTimeout != 2*time.Hour || a.EndOfLife.Year() != 2027 {
		t.Fatalf("azure = %+v", a)
	}
	if f.Catalog == nil || f.Retention == nil || f.Retention.KeepWithin != 90*24*time.Hour || len(f.OnPrem) != 1 {
		t.Fatalf("file = %+v", f)
	}
}

func TestParseErrors(t *testing.T) {
	// replace swaps one line of the minimal file.
	replace := func(old, new string) string {
		if !strings.Contains(minimal, old) {
			t.Fatalf("fixture lacks %q", old)
		}
		return strings.Replace(minimal, old, new, 1)
	}
	tests := []struct {
		name, src string
		want      []string // substrings of the error
	}{
		{"env var", replace(`"1.2.3"`, `env.VERSION`), []string{"pipeline.hcl:16:16", "references are not allowed", "no secrets"}},
		{"interpolation", replace(`"1.2.3"`, `"${var.v}"`), []string{"references are not allowed"}},
		{"function", replace(`"1.2.3"`, `env("V")`), []string{"functions are not allowed"}},
		{"bad version", replace(`"1.2.3"`, `"1.2"`), []string{"pipeline.hcl:16:16", "invalid version", "next-patch"}},
		{"leading zero", replace(`"1.2.3"`, `"01.2.3"`), []string{"invalid version"}},
		{"bad os", replace(`"linux"`, `"BeOS"`), []string{"pipeline.hcl:4:", "invalid os_type", "Linux, Windows"}},
		{"bad sub", replace(sub, "abc"), []string{"invalid subscription"}},
		{"gallery dash", replace(`"gal"`, `"my-gal"`), []string{"invalid gallery", "no '-'"}},
		{"unknown attr", replace(`os_type = "linux"`, `os_type = "linux"
  colour = "red"`), []string{"Unsupported argument", "colour"}},
		{"no storage", replace(`storage {
    account   = "acct"
    container = "vhds"
  }`, ``), []string{"storage required"}},
		{"two sources", replace(`source  = "disk.vhdx"`, `source = "d.vhdx"
  packer { template = "t.pkr.hcl" }`), []string{"two sources"}},
		{"trusted launch v1", replace(`os_type = "linux"`, `os_type = "linux"
  security_type = "TrustedLaunch"
  hyperv_generation = "V1"`), []string{"Trusted Launch needs generation 2"}},
		{"trusted launch managed image", replace(`os_type = "linux"`, `os_type = "linux"
  security_type = "TrustedLaunch"`) + "\n", nil},
		{"dup region", replace(`target_region "northeurope" {`, `target_region "northeurope" {}
  target_region "northeurope" {`), []string{"duplicate target_region"}},
		{"replicas", replace(`replicas = 2`, `replicas = 0`), []string{"invalid replicas"}},
		{"eol", replace(`version    = "1.2.3"`, `version = "1.2.3"
  end_of_life = "next year"`), []string{"invalid end_of_life"}},
		{"timeout", replace(`version    = "1.2.3"`, `version = "1.2.3"
  replication_timeout = "forever"`), []string{"invalid replication_timeout"}},
		{"sas", replace(`container = "vhds"`, `container = "vhds"
    blob_endpoint = "https://a.blob.core.windows.net/?sv=1&sig=abc"`), []string{"SAS token"}},
		{"share", replace(`version    = "1.2.3"`, `version = "1.2.3"
  share {
    subscription = "`+sub+`"
    principal_id = "me"
  }`), []string{"invalid principal_id"}},
		{"secret packer var", replace(`source  = "disk.vhdx"`, `packer {
    template = "t.pkr.hcl"
    vars = { admin_password = "x" }
  }`), []string{"secret in packer vars", "PKR_VAR_admin_password"}},
		{"catalog password", minimal + `catalog { url = "postgres://u:pw@h/db" }`, []string{"password in catalog url"}},
		{"unknown image", replace(`subscription   =`, `image = "other"
  subscription   =`), []string{"unknown image"}},
		{"syntax", minimal + "image {", []string{"pipeline.hcl:"}},
		{"no image", `catalog { url = "x" }`, []string{"no image"}},
		{"several errors at once", replace(`"1.2.3"`, `"x"`) + `
image "web" {
  source = "b"
  os_type = "Linux"
}`, []string{"invalid version", "duplicate image"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), "pipeline.hcl")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted an invalid file")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestTrustedLaunchTurnsManagedImageOff(t *testing.T) {
	src := strings.Replace(minimal, `os_type = "linux"`, `os_type = "linux"
  security_type = "TrustedLaunch"`, 1)
	f, err := Parse([]byte(src), "p.hcl")
	if err != nil {
		t.Fatal(err)
	}
	if f.Azure[0].ManagedImage {
		t.Fatal("TrustedLaunch image kept a managed image step")
	}
	src = strings.Replace(src, `gallery    = "gal"`, `gallery = "gal"
  managed_image = true`, 1)
	if _, err := Parse([]byte(src), "p.hcl"); err == nil || !strings.Contains(err.Error(), "managed image not possible") {
		t.Fatalf("explicit managed_image with TrustedLaunch: %v", err)
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"90d": 90 * 24 * time.Hour, "2h": 2 * time.Hour, "1h30m": 90 * time.Minute,
		"2w": 14 * 24 * time.Hour, "36h": 36 * time.Hour, "1d12h": 36 * time.Hour} {
		got, err := ParseDuration(in)
		if err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v", in, got, err)
		}
	}
	for _, bad := range []string{"d", "1.5d", "-1d", "x"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("ParseDuration(%q) accepted", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(minimal))
	f.Add([]byte(`image "a" { source = "x" os_type = "Linux" }`))
	f.Add([]byte(`image "a" { packer { template = "t" } }` + "\nazure \"b\" { }"))
	f.Add([]byte(`x = ${`))
	f.Add([]byte("retention { keep_within = \"99999999d\" }"))
	f.Fuzz(func(t *testing.T, src []byte) {
		if len(src) > 1<<16 {
			return
		}
		f, err := Parse(src, "fuzz.hcl")
		if err == nil && f == nil {
			t.Fatal("nil file without error")
		}
		if err != nil && err.Error() == "" {
			t.Fatal("empty error message")
		}
	})
}

func TestEveryExampleParses(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "examples", "*.hcl"))
	if err != nil || len(files) < 3 {
		t.Fatalf("examples: %v %v", files, err)
	}
	for _, f := range files {
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}
