package azure

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"imgpipe/internal/config"
)

func TestParseResourceID(t *testing.T) {
	base := "/subscriptions/AAAA/resourceGroups/rg/providers/Microsoft.Compute"
	tests := []struct {
		in, kind string
		ok       bool
	}{
		{base + "/galleries/g", "gallery", true},
		{base + "/galleries/g/images/d", "definition", true},
		{base + "/galleries/g/images/d/versions/1.2.3", "version", true},
		{strings.ToLower(base) + "/GALLERIES/g/IMAGES/d/VERSIONS/1.2.3", "version", true},
		{base + "/images/web-1.0.0", "image", true},
		{base + "/disks/x", "", false},
		{base + "/galleries/g/versions/d", "", false},
		{"/subscriptions/a/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/x", "", false},
		{"garbage", "", false},
		{base + "/galleries/g/images/d/versions/1/extra/x", "", false},
	}
	for _, tt := range tests {
		r, err := ParseResourceID(tt.in)
		if (err == nil) != tt.ok || (tt.ok && r.Kind() != tt.kind) {
			t.Errorf("ParseResourceID(%q) = %+v, %v", tt.in, r, err)
			continue
		}
		if tt.ok && !SameID(r.String(), tt.in) {
			t.Errorf("round trip %q -> %q", tt.in, r.String())
		}
	}
}

func FuzzParseResourceID(f *testing.F) {
	f.Add("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.0")
	f.Add("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/images/i")
	f.Add("////")
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseResourceID(s)
		if err == nil {
			if _, err := ParseResourceID(r.String()); err != nil {
				t.Fatalf("%q parsed to %q which does not parse: %v", s, r.String(), err)
			}
		}
	})
}

func ver(name, digest string) *armcompute.GalleryImageVersion {
	return &armcompute.GalleryImageVersion{Name: to.Ptr(name), Tags: map[string]*string{TagSourceDigest: to.Ptr(digest)}}
}

func TestResolveVersion(t *testing.T) {
	d := func(v string) *Desired {
		return &Desired{Azure: config.Azure{Version: v}, Source: &Source{Digest: "blake3:aa"}}
	}
	tests := []struct {
		name     string
		d        *Desired
		versions []*armcompute.GalleryImageVersion
		want     string
	}{
		{"explicit", d("2.0.0"), []*armcompute.GalleryImageVersion{ver("1.0.0", "x")}, "2.0.0"},
		{"first", d("next-patch"), nil, "1.0.0"},
		{"bump highest numerically", d("next-patch"), []*armcompute.GalleryImageVersion{ver("1.0.9", "x"), ver("1.0.10", "y"), ver("0.9.99", "z")}, "1.0.11"},
		{"resume the one made from this disk", d("next-patch"), []*armcompute.GalleryImageVersion{ver("1.0.10", "x"), ver("1.0.4", "blake3:aa")}, "1.0.4"},
	}
	for _, tt := range tests {
		got, err := resolveVersion(tt.d, tt.versions)
		if err != nil || got != tt.want {
			t.Errorf("%s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
}

func TestCheckDefinition(t *testing.T) {
	def := &armcompute.GalleryImage{Properties: &armcompute.GalleryImageProperties{
		HyperVGeneration: to.Ptr(armcompute.HyperVGenerationV1),
		OSType:           to.Ptr(armcompute.OperatingSystemTypesLinux),
		OSState:          to.Ptr(armcompute.OperatingSystemStateTypesGeneralized),
		Architecture:     to.Ptr(armcompute.ArchitectureX64),
		Identifier:       &armcompute.GalleryImageIdentifier{Publisher: to.Ptr("p"), Offer: to.Ptr("o"), SKU: to.Ptr("s")},
	}}
	base := Desired{
		Image:  config.Image{OSType: "Linux", OSState: "Generalized", Architecture: "x64", SecurityType: "Standard"},
		Azure:  config.Azure{Definition: "web"},
		Source: &Source{Generation: "V1"},
	}
	tests := []struct {
		name   string
		mutate func(d *Desired) string // returns the generation
		want   []string
	}{
		{"same", func(d *Desired) string { return "V1" }, nil},
		{"gen2 disk into V1", func(d *Desired) string { d.Source.Generation = "V2"; return "V2" },
			[]string{"hyperVGeneration V1 but the disk is V2", "Nothing was uploaded"}},
		{"os type", func(d *Desired) string { d.Image.OSType = "Windows"; return "V1" }, []string{"osType is Linux in Azure but Windows in the pipeline file"}},
		{"trusted launch", func(d *Desired) string { d.Image.SecurityType = "TrustedLaunch"; return "V1" }, []string{"security type is Standard in Azure but TrustedLaunch"}},
		{"publisher set and different", func(d *Desired) string { d.Image.Publisher = "q"; return "V1" }, []string{"publisher is p in Azure but q"}},
		{"publisher unset is not compared", func(d *Desired) string { return "V1" }, nil},
	}
	for _, tt := range tests {
		d := base
		src := *base.Source
		d.Source = &src
		gen := tt.mutate(&d)
		err := checkDefinition(&d, def, gen)
		if tt.want == nil {
			if err != nil {
				t.Errorf("%s: %v", tt.name, err)
			}
			continue
		}
		var pe *PlanError
		if !errors.As(err, &pe) {
			t.Errorf("%s: %v is not a PlanError", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: %q lacks %q", tt.name, err, w)
			}
		}
	}
}

func TestConsistencyRetry(t *testing.T) {
	lag := azureErr("DELETE", "/x", 409, `{"error":{"code":"CannotDeleteResource","message":"nested"}}`)
	other := azureErr("DELETE", "/x", 409, `{"error":{"code":"Conflict","message":"busy"}}`)
	parent := azureErr("PUT", "/x", 404, `{"error":{"code":"ParentResourceNotFound","message":"p"}}`)
	c := Consistency{Window: time.Second, Initial: time.Millisecond, Max: 5 * time.Millisecond}
	tests := []struct {
		name     string
		errs     []error
		wantErr  bool
		wantCall int
	}{
		{"lag then ok", []error{lag, lag, nil}, false, 3},
		{"parent not found then ok", []error{parent, nil}, false, 2},
		{"other conflict is not retried", []error{other, nil}, true, 1},
		{"plain error", []error{errors.New("x"), nil}, true, 1},
	}
	for _, tt := range tests {
		calls := 0
		err := c.do(context.Background(), "op", func(context.Context) error {
			e := tt.errs[calls]
			calls++
			return e
		})
		if (err != nil) != tt.wantErr || calls != tt.wantCall {
			t.Errorf("%s: err %v after %d calls", tt.name, err, calls)
		}
	}
	// bounded: a lag that never ends gives up with a message saying so
	short := Consistency{Window: 20 * time.Millisecond, Initial: time.Millisecond, Max: 2 * time.Millisecond}
	err := short.do(context.Background(), "delete gallery", func(context.Context) error { return lag })
	if err == nil || !strings.Contains(err.Error(), "eventual consistency window exceeded") {
		t.Fatalf("unbounded: %v", err)
	}
}

func TestPlanText(t *testing.T) {
	p := &Plan{Target: "prod", Image: "web", Version: "1.0.0", Generation: "V2", Source: &Source{Digest: "blake3:0123456789abcdef0123"},
		Steps: []Step{
			{Action: ActKeep, Kind: KindGallery, Name: "gal"},
			{Action: ActCreate, Kind: KindVersion, Name: "1.0.0", Changes: []string{"region westeurope x1 Standard_LRS"}},
			{Action: ActWait, Kind: KindReplication, Name: "1.0.0", Reason: "until done"},
		},
		Warnings: []string{"gallery gal is in northeurope"}}
	got := p.Text()
	for _, w := range []string{`Plan for azure "prod"`, "source blake3:0123456789ab,", "= keep      gallery", "+ create    version", "region westeurope x1", "> wait", "warning: gallery gal", "Plan: 1 create, 1 wait, 1 keep."} {
		if !strings.Contains(got, w) {
			t.Errorf("plan text lacks %q:\n%s", w, got)
		}
	}
}

func TestAccountOf(t *testing.T) {
	for in, want := range map[string]string{
		"https://stimages.blob.core.windows.net/vhds/a.vhd":     "stimages",
		"http://127.0.0.1:10000/devstoreaccount1/vhds/a.vhd":    "devstoreaccount1",
		"http://localhost:10000/devstoreaccount1/vhds":          "devstoreaccount1",
		"https://acct.blob.core.chinacloudapi.cn/c/b.vhd?sig=x": "acct",
	} {
		if got := accountOf(in); got != want {
			t.Errorf("accountOf(%q) = %q, want %q", in, got, want)
		}
	}
}
