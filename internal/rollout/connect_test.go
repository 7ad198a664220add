package rollout

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"imgpipe/internal/azure"
)

func TestVersionArg(t *testing.T) {
	const id = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/web/versions/1.4.2"
	fromFile := func(arg string) (azure.ResourceID, error) {
		if !strings.HasPrefix(arg, "/") {
			return azure.ResourceID{Subscription: "s", ResourceGroup: "rg", Gallery: "g", Definition: "web", Version: arg}, nil
		}
		return azure.ParseResourceID(arg)
	}
	noAzureBlock := func(string) (azure.ResourceID, error) { return azure.ResourceID{}, errors.New("no azure block") }
	for _, c := range []struct {
		name    string
		arg     string
		resolve func(string) (azure.ResourceID, error)
		version string // the ref's
		id      string // StartOptions.VersionID
		err     string
	}{
		{name: "bare, no file: the catalog finds the gallery version", arg: "1.4.2", version: "1.4.2"},
		{name: "bare, not a version", arg: "latest", err: "is not a version (Major.Minor.Patch) or a gallery image version id"},
		{name: "an id, no file", arg: id, version: "1.4.2", id: id},
		{name: "a definition id is not a version", arg: strings.TrimSuffix(id, "/versions/1.4.2"), err: "is not a gallery image version"},
		{name: "bare, the file's azure block", arg: "1.4.2", resolve: fromFile, version: "1.4.2", id: id},
		{name: "bare, a file without an azure block", arg: "1.4.2", resolve: noAzureBlock, version: "1.4.2"},
		{name: "not a version, a file without an azure block", arg: "v1", resolve: noAzureBlock, err: "no azure block"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ref, o, err := VersionArg("web", c.arg, c.resolve)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("err %v, want %q", err, c.err)
				}
				return
			}
			if err != nil || ref.Image != "web" || ref.Version != c.version || o.VersionID != c.id {
				t.Fatalf("%+v %+v %v; want version %s, id %q", ref, o, err, c.version, c.id)
			}
		})
	}
}

func TestConnectionsOpenEachSubscriptionOnce(t *testing.T) {
	opened := map[string]int{}
	conn := Connections(func(sub string) (*azure.Clients, error) {
		opened[sub]++
		if sub == "bad" {
			return nil, errors.New("no credential")
		}
		return &azure.Clients{}, nil
	})
	ctx := context.Background()
	a1, _ := conn(ctx, "a")
	a2, _ := conn(ctx, "a")
	conn(ctx, "b")
	if _, err := conn(ctx, "bad"); err == nil {
		t.Fatal("a failed connection returned no error")
	}
	conn(ctx, "bad") // a failure is not kept: tried again
	if a1 == nil || a1 != a2 || opened["a"] != 1 || opened["b"] != 1 || opened["bad"] != 2 {
		t.Fatalf("opened %v, same clients %v", opened, a1 == a2)
	}
}

func TestEnvDriverPoll(t *testing.T) {
	for v, want := range map[string]time.Duration{"": 0, "150ms": 150 * time.Millisecond, "2m": 2 * time.Minute, "soon": 0, "0s": 0} {
		t.Setenv(azure.EnvPollInterval, v)
		if d := EnvDriver(nil); d.Poll != want || d.Azure == nil {
			t.Errorf("%s=%q: poll %v, want %v", azure.EnvPollInterval, v, d.Poll, want)
		}
	}
}
