package pipeline

// The destinations' side of retention (gc) and revocation: the catalog
// plans them; these act on Azure (internal/azure) and on on-prem libraries
// (internal/onprem), translating catalog copies into their terms.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/onprem"
)

// Fleet acts on the copies of versions wherever they are: Azure resources
// in whatever subscription each one is (one Publisher per subscription,
// from Connect), and library copies in their on-prem library. It is the
// catalog's InUseSource, Executor and Revoker.
type Fleet struct {
	// Connect opens a Publisher for a subscription.
	Connect func(subscription string) (*azure.Publisher, error)
	// Subscriptions are asked which versions VMs and scale sets use; the
	// first also acts on blobs (which carry no subscription).
	Subscriptions []string

	mu   sync.Mutex
	pubs map[string]*azure.Publisher
}

var (
	_ catalog.InUseSource = (*Fleet)(nil)
	_ catalog.Executor    = (*Fleet)(nil)
	_ catalog.Revoker     = (*Fleet)(nil)
)

func (f *Fleet) publisher(sub string) (*azure.Publisher, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := strings.ToLower(sub)
	if p := f.pubs[key]; p != nil {
		return p, nil
	}
	if f.Connect == nil {
		return nil, fmt.Errorf("no connection to Azure subscription %s", sub)
	}
	p, err := f.Connect(sub)
	if err != nil {
		return nil, err
	}
	if f.pubs == nil {
		f.pubs = map[string]*azure.Publisher{}
	}
	f.pubs[key] = p
	return p, nil
}

// Connected opens every subscription's connection now (errors early).
func (f *Fleet) Connected() error {
	for _, sub := range f.Subscriptions {
		if _, err := f.publisher(sub); err != nil {
			return err
		}
	}
	return nil
}

// subscriptionOf takes the subscription out of an ARM id; "" for a blob URL.
func subscriptionOf(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions") {
		return parts[1]
	}
	return ""
}

func (f *Fleet) publisherFor(resourceID string) (*azure.Publisher, error) {
	sub := subscriptionOf(resourceID)
	if sub == "" {
		// blobs carry no subscription: any connection with storage access does
		if len(f.Subscriptions) == 0 {
			return nil, fmt.Errorf("no subscription to act on %s with", resourceID)
		}
		sub = f.Subscriptions[0]
	}
	return f.publisher(sub)
}

// VersionsInUse asks every subscription which images its VMs and scale
// sets reference.
func (f *Fleet) VersionsInUse(ctx context.Context) ([]catalog.InUse, error) {
	var out []catalog.InUse
	for _, sub := range f.Subscriptions {
		p, err := f.publisher(sub)
		if err != nil {
			return nil, err
		}
		users, err := p.VersionsInUse(ctx)
		if err != nil {
			return nil, fmt.Errorf("subscription %s: %w", sub, err)
		}
		for id, by := range users {
			for _, b := range by {
				out = append(out, catalog.InUse{ResourceID: id, By: b})
			}
		}
	}
	return out, nil
}

// Deprecate excludes a gallery version from latest and sets its end of life.
func (f *Fleet) Deprecate(ctx context.Context, s catalog.GCStep) error {
	if s.Copy == nil || s.Copy.Kind != catalog.KindGalleryVersion {
		return nil // nothing in Azure to deprecate
	}
	p, err := f.publisherFor(s.Copy.ResourceID)
	if err != nil {
		return err
	}
	if err := p.DeprecateVersion(ctx, s.Copy.ResourceID, s.EndOfLife); err != nil {
		return fmt.Errorf("deprecate %s: %w", s.Ref, err)
	}
	return nil
}

// copyKinds maps catalog copy kinds to the Azure resource kinds.
var copyKinds = map[catalog.CopyKind]azure.Kind{
	catalog.KindGalleryVersion: azure.KindVersion,
	catalog.KindManagedImage:   azure.KindManagedImage,
	catalog.KindManagedDisk:    azure.KindDisk,
	catalog.KindBlob:           azure.KindBlob,
	catalog.KindRegion:         azure.KindRegion,
}

// Delete removes one copy (the catalog orders the deletions by dependency).
func (f *Fleet) Delete(ctx context.Context, s catalog.GCStep) error {
	if s.Copy == nil {
		return nil
	}
	switch s.Copy.Kind {
	case catalog.KindOnprem:
		return DeleteLibraryCopy(s.Copy)
	case catalog.KindArtifact:
		return nil // the build's output file is the user's
	}
	kind, ok := copyKinds[s.Copy.Kind]
	if !ok {
		return fmt.Errorf("%s copies are not Azure resources", s.Copy.Kind)
	}
	if kind == azure.KindRegion {
		return nil // goes with its gallery version
	}
	p, err := f.publisherFor(s.Copy.ResourceID)
	if err != nil {
		return err
	}
	return p.DeleteCopy(ctx, kind, s.Copy.ResourceID)
}

// RevokeCopy marks a revoked version: a gallery version is excluded from
// latest and tagged; a library copy is marked in its library.
func (f *Fleet) RevokeCopy(ctx context.Context, a catalog.RevokeAction) error {
	switch a.Copy.Kind {
	case catalog.KindOnprem:
		return RevokeLibraryCopy(a)
	case catalog.KindGalleryVersion:
	default:
		return fmt.Errorf("%s copies are not revoked in Azure", a.Copy.Kind)
	}
	p, err := f.publisherFor(a.Copy.ResourceID)
	if err != nil {
		return err
	}
	if err := p.RevokeVersion(ctx, a.Copy.ResourceID, a.Reason); err != nil {
		return fmt.Errorf("revoke %s: %w", a.Ref, err)
	}
	return nil
}

// DeleteLibraryCopy removes a library copy through the library (so its
// latest pointer moves and a channel's version is refused). Already gone is done.
func DeleteLibraryCopy(cp *catalog.Copy) error {
	if _, err := os.Stat(cp.ResourceID); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lib, err := openCopyLibrary(*cp)
	if err != nil {
		return err
	}
	return lib.Delete(cp.Ref.Image, cp.Ref.Version)
}

// RevokeLibraryCopy marks a revoked version in the on-prem library whose
// copy the catalog recorded (the library is the copy's location).
func RevokeLibraryCopy(act catalog.RevokeAction) error {
	lib, err := openCopyLibrary(act.Copy)
	if err != nil {
		return err
	}
	_, err = lib.Revoke(act.Ref.Image, act.Ref.Version, act.Reason)
	return err
}

// openCopyLibrary opens the on-prem library that holds cp (its location, or
// LIBRARY/IMAGE/VERSION/FILE from the path).
func openCopyLibrary(cp catalog.Copy) (*onprem.Library, error) {
	root := cp.Location
	if root == "" {
		root = filepath.Dir(filepath.Dir(filepath.Dir(cp.ResourceID)))
	}
	if st, err := os.Stat(root); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("on-prem library %s is not reachable: mount it and run again", root)
	}
	return onprem.Open(root)
}
