package rollout

// What the CLI and the reconciler need to set a driver up: the version a
// command line names, Azure connections per subscription.

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
)

// VersionArg reads the VERSION of imgpipe rollout start IMAGE VERSION: a
// gallery image version id, or a bare version (its gallery version then
// comes from resolve: a pipeline file's azure block; or, with no file
// (resolve nil) or a file without one, from the catalog at Start).
func VersionArg(image, arg string, resolve func(string) (azure.ResourceID, error)) (catalog.Ref, StartOptions, error) {
	ref := catalog.Ref{Image: image, Version: arg}
	bare := !strings.HasPrefix(arg, "/")
	if bare && resolve == nil {
		if !config.ValidVersion(arg) {
			return ref, StartOptions{}, fmt.Errorf("%q is not a version (Major.Minor.Patch) or a gallery image version id", arg)
		}
		return ref, StartOptions{}, nil
	}
	if resolve == nil {
		resolve = azure.ParseResourceID
	}
	id, err := resolve(arg)
	if err != nil && bare && config.ValidVersion(arg) {
		return ref, StartOptions{}, nil // a file without an azure block: the catalog has the gallery version, if any
	}
	if err != nil {
		return ref, StartOptions{}, err
	}
	if id.Kind() != "version" {
		return ref, StartOptions{}, fmt.Errorf("%s is not a gallery image version", arg)
	}
	ref.Version = id.Version
	return ref, StartOptions{VersionID: id.String()}, nil
}

// Connections is a Driver.Azure that opens each subscription's clients
// once, with open, and hands out the same clients after.
func Connections(open func(subscription string) (*azure.Clients, error)) func(context.Context, string) (*azure.Clients, error) {
	var mu sync.Mutex
	conns := map[string]*azure.Clients{}
	return func(_ context.Context, sub string) (*azure.Clients, error) {
		mu.Lock()
		defer mu.Unlock()
		if c := conns[sub]; c != nil {
			return c, nil
		}
		c, err := open(sub)
		if err != nil {
			return nil, err
		}
		conns[sub] = c
		return c, nil
	}
}

// EnvDriver is the reconciler's driver: Azure reached as the environment
// says (azure.ConnectionFromEnv), polled every IMGPIPE_POLL_INTERVAL when
// it holds a positive duration (else the default).
func EnvDriver(cat *catalog.Catalog) *Driver {
	d := &Driver{Cat: cat, Azure: func(ctx context.Context, sub string) (*azure.Clients, error) {
		cred, opts, err := azure.ConnectionFromEnv().Open()
		if err != nil {
			return nil, err
		}
		return azure.NewClients(sub, cred, opts)
	}, Poll: azure.PollIntervalFromEnv()}
	return d
}
