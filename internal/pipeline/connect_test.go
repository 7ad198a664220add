package pipeline

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"imgpipe/internal/catalog"
)

// TestOpenPublishesOnpremOnly: Open connects a file's onprem block, reads
// the source and opens the file's catalog; Publish records the version and
// moves the channel, and a second Publish changes nothing. No CLI.
func TestOpenPublishesOnpremOnly(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	disk, lib, cat := filepath.Join(dir, "disk.raw"), filepath.Join(dir, "library"), filepath.Join(dir, "catalog.db")
	writeDisk(t, disk, "open")
	path := filepath.Join(dir, "pipeline.hcl")
	src := fmt.Sprintf(`
image "app" {
  source  = %q
  os_type = "Linux"
}
catalog {
  url = %q
}
onprem "lab" {
  library = %q
}
`, disk, cat, lib)
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(ctx, path, Options{Need: catalog.IfPresent}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cat); err != nil {
		t.Fatalf("the file's catalog block was not opened: %v", err)
	}
	if _, _, err := Publish(ctx, path, "", Options{Version: "v1.0"}, nil); err == nil || !strings.Contains(err.Error(), "MAJOR.MINOR.PATCH") {
		t.Fatalf("--version v1.0: %v", err)
	}
	asked := false
	confirm := func(*Plan) (bool, error) { asked = true; return true, nil }
	plan, res, err := Publish(ctx, path, "", Options{Version: "1.2.3", By: "test"}, confirm)
	if err != nil {
		t.Fatal(err)
	}
	if asked {
		t.Error("an on-prem-only publish asked for confirmation (nothing leaves the site)")
	}
	if !plan.HasChanges() || res.Version != "1.2.3" || res.Catalog != cat || len(res.Destinations) != 1 || res.Destinations[0].Name != "onprem lab" {
		t.Fatalf("first publish: changes %v, result %+v", plan.HasChanges(), res)
	}
	plan, _, err = Publish(ctx, path, "", Options{By: "test"}, confirm)
	if err != nil || plan.HasChanges() || plan.Version != "1.2.3" {
		t.Fatalf("second publish: %v, changes %v, version %s", err, plan != nil && plan.HasChanges(), plan.Version)
	}
	c, err := catalog.Open(ctx, cat)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cps, err := c.Copies(ctx, catalog.Ref{Image: "app", Version: "1.2.3"})
	if err != nil || len(cps) == 0 {
		t.Fatalf("copies recorded: %v, %v", cps, err)
	}
}

// TestVerbArgumentsRefusedBeforeConnecting: the gallery verbs check what
// they were given before any connection to Azure.
func TestVerbArgumentsRefusedBeforeConnecting(t *testing.T) {
	ctx := context.Background()
	t.Setenv("AZURE_SUBSCRIPTION_ID", "")
	version := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/1.0.0"
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"bare version without a file", errOf(ResolveVersion("", "", "1.0.0")), "not a resource id"},
		{"not a version", errOf(ResolveVersion("f.hcl", "", "v1")), "not a version"},
		{"no region", errOf(Replicate(ctx, On{Arg: version}, Replication{Replicas: 1, StorageAccountType: "Standard_LRS"})), "--add-region"},
		{"a definition", errOf(Replicate(ctx, On{Arg: strings.TrimSuffix(version, "/versions/1.0.0")}, Replication{Add: []string{"x"}, Replicas: 1, StorageAccountType: "Standard_LRS"})), "is not a version id"},
		{"storage type", errOf(Replicate(ctx, On{Arg: version}, Replication{Add: []string{"x"}, Replicas: 1, StorageAccountType: "Hot"})), "--storage-account-type"},
		{"replicas", errOf(Replicate(ctx, On{Arg: version}, Replication{Add: []string{"x"}, Replicas: 101, StorageAccountType: "Premium_LRS"})), "--replicas 101"},
		{"nothing to destroy", errOf(Destroy(ctx, On{}, "", false, nil)), "say what to destroy"},
		{"check-deploy without a location", errOf(CheckDeploy(ctx, On{Arg: version}, "sub", "", "")), "--location"},
		{"no subscription", errOf(OpenTarget("", "", "")), "no subscription"},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, tt.err, tt.want)
		}
	}
	p, err := ExcludeTags(catalog.Policy{}, []string{"keep", "team=web"})
	if err != nil || len(p.ExcludeTags) != 2 || p.ExcludeTags["keep"] != "" || p.ExcludeTags["team"] != "web" {
		t.Errorf("ExcludeTags: %v, %v", p.ExcludeTags, err)
	}
	if _, err := ExcludeTags(p, []string{"=x"}); err == nil {
		t.Error("--exclude-tag =x accepted")
	}
}

func errOf[T any](_ T, err error) error { return err }
