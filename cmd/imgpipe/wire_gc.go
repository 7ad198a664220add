package main

// The outside side of gc and revoke: Azure (internal/azure) for gallery
// versions, managed images, disks and blobs, and the on-prem library
// (internal/onprem) for library copies.

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
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
)

func init() { wireLifecycle() }

// wireLifecycle installs the gc hook and the revokers.
func wireLifecycle() {
	gcAzure = wireGC
	revokers[catalog.KindGalleryVersion] = func(ctx context.Context) (catalog.Revoker, error) {
		return &azureFleet{pubs: map[string]*azure.Publisher{}}, nil
	}
	revokers[catalog.KindOnprem] = func(ctx context.Context) (catalog.Revoker, error) { return onpremRevoker{}, nil }
}

// azureFleet acts on Azure resources in whatever subscription each one is,
// with one Publisher per subscription (connected as publish is).
type azureFleet struct {
	mu   sync.Mutex
	subs []string // asked which versions VMs and scale sets use
	pubs map[string]*azure.Publisher
}

func (a *azureFleet) publisher(sub string) (*azure.Publisher, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	key := strings.ToLower(sub)
	if p := a.pubs[key]; p != nil {
		return p, nil
	}
	s, err := openAzure(azureFlags{}, sub)
	if err != nil {
		return nil, err
	}
	a.pubs[key] = s.pub
	return s.pub, nil
}

// subscriptionOf takes the subscription out of an ARM id; "" for a blob URL.
func subscriptionOf(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) >= 2 && strings.EqualFold(parts[0], "subscriptions") {
		return parts[1]
	}
	return ""
}

func (a *azureFleet) publisherFor(resourceID string) (*azure.Publisher, error) {
	sub := subscriptionOf(resourceID)
	if sub == "" {
		// blobs carry no subscription: any connection with storage access does
		if len(a.subs) == 0 {
			return nil, fmt.Errorf("no subscription to act on %s with", resourceID)
		}
		sub = a.subs[0]
	}
	return a.publisher(sub)
}

// VersionsInUse asks every known subscription which images its VMs and
// scale sets reference.
func (a *azureFleet) VersionsInUse(ctx context.Context) ([]catalog.InUse, error) {
	var out []catalog.InUse
	for _, sub := range a.subs {
		p, err := a.publisher(sub)
		if err != nil {
			return nil, err
		}
		list, err := p.VersionsInUse(ctx)
		if err != nil {
			return nil, fmt.Errorf("subscription %s: %w", sub, err)
		}
		out = append(out, list...)
	}
	return out, nil
}

func (a *azureFleet) Deprecate(ctx context.Context, s catalog.GCStep) error {
	if s.Copy == nil || s.Copy.Kind != catalog.KindGalleryVersion {
		return nil
	}
	p, err := a.publisherFor(s.Copy.ResourceID)
	if err != nil {
		return err
	}
	return p.Deprecate(ctx, s)
}

func (a *azureFleet) Delete(ctx context.Context, s catalog.GCStep) error {
	if s.Copy == nil {
		return nil
	}
	switch s.Copy.Kind {
	case catalog.KindOnprem:
		return deleteOnprem(s.Copy)
	case catalog.KindArtifact:
		return nil // the build's output file is the user's
	}
	p, err := a.publisherFor(s.Copy.ResourceID)
	if err != nil {
		return err
	}
	return p.Delete(ctx, s)
}

func (a *azureFleet) RevokeCopy(ctx context.Context, act catalog.RevokeAction) error {
	p, err := a.publisherFor(act.Copy.ResourceID)
	if err != nil {
		return err
	}
	return p.RevokeCopy(ctx, act)
}

// deleteOnprem removes a library copy through the library (so its latest
// pointer moves and a channel's version is refused). Already gone is done.
func deleteOnprem(cp *catalog.Copy) error {
	if _, err := os.Stat(cp.ResourceID); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	lib, err := openCopyLibrary(*cp)
	if err != nil {
		return err
	}
	return lib.Delete(cp.Ref.Image, cp.Ref.Version)
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

// wireGC connects gc to Azure in the subscriptions of the pipeline file's
// azure blocks and $AZURE_SUBSCRIPTION_ID. Without any, gc plans from the
// catalog only (nil source and executor).
func wireGC(ctx context.Context, file *config.File) (catalog.InUseSource, catalog.Executor, error) {
	seen := map[string]bool{}
	a := &azureFleet{pubs: map[string]*azure.Publisher{}}
	add := func(sub string) {
		if sub != "" && !seen[strings.ToLower(sub)] {
			seen[strings.ToLower(sub)] = true
			a.subs = append(a.subs, sub)
		}
	}
	if file != nil {
		for _, az := range file.Azure {
			add(az.Subscription)
		}
	}
	add(os.Getenv("AZURE_SUBSCRIPTION_ID"))
	if len(a.subs) == 0 {
		return nil, nil, nil
	}
	for _, sub := range a.subs {
		if _, err := a.publisher(sub); err != nil {
			return nil, nil, err
		}
	}
	return a, a, nil
}

// onpremRevoker marks a revoked version in the on-prem library whose copy
// the catalog recorded (the library is the copy's location).
type onpremRevoker struct{}

func (onpremRevoker) RevokeCopy(ctx context.Context, act catalog.RevokeAction) error {
	lib, err := openCopyLibrary(act.Copy)
	if err != nil {
		return err
	}
	_, err = lib.Revoke(act.Ref.Image, act.Ref.Version, act.Reason)
	return err
}
