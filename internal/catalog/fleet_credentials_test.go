package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
)

func testHostCredentials(t *testing.T, b backend) {
	ctx := context.Background()
	c := openAt(t, b.newLocation(t))
	a, bb := strings.Repeat("a", 64), strings.Repeat("b", 64)
	if err := c.EnrollHost(ctx, "web-1", a); err != nil {
		t.Fatal(err)
	}
	// a second enrolment of the same host is refused: the first holder keeps it
	if err := c.EnrollHost(ctx, "web-1", bb); !errors.Is(err, ErrConflict) {
		t.Fatalf("re-enrol: %v, want ErrConflict", err)
	}
	// one credential cannot be issued to two hosts
	if err := c.EnrollHost(ctx, "web-2", a); err == nil {
		t.Fatal("the same credential digest was recorded for two hosts")
	}
	if h, err := c.HostForCredential(ctx, strings.ToUpper(a)); err != nil || h != "web-1" {
		t.Fatalf("lookup: %q %v", h, err)
	}
	if _, err := c.HostForCredential(ctx, bb); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown credential: %v", err)
	}
	if err := c.EnrollHost(ctx, "", bb); !errors.Is(err, ErrInvalid) {
		t.Fatalf("empty host: %v", err)
	}
	if err := c.EnrollHost(ctx, "web-3", "short"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad digest: %v", err)
	}
	// revoking lets a rebuilt machine enrol again, with a new credential
	if err := c.RevokeHostCredential(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HostForCredential(ctx, a); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked credential still maps: %v", err)
	}
	if err := c.RevokeHostCredential(ctx, "web-1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoke twice: %v", err)
	}
	if err := c.EnrollHost(ctx, "web-1", bb); err != nil {
		t.Fatalf("enrol after revoke: %v", err)
	}
	// forgetting a host forgets its credential
	if err := c.ReportHost(ctx, Host{Name: "web-1", Platform: PlatformOnprem}); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveHost(ctx, "web-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.HostForCredential(ctx, bb); !errors.Is(err, ErrNotFound) {
		t.Fatalf("credential of a removed host still maps: %v", err)
	}
}
