package main

// gc and revoke act on destinations through internal/pipeline's Fleet: Azure
// resources in the subscription each one is in, library copies in their
// library.

import (
	"context"
	"os"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
)

// connectAzure opens a Publisher for a subscription, as publish connects.
func connectAzure(sub string) (*azure.Publisher, error) {
	s, err := openAzure(azureFlags{}, sub)
	if err != nil {
		return nil, err
	}
	return s.pub, nil
}

// fleet acts on copies in the subscriptions of the pipeline file's azure
// blocks and $AZURE_SUBSCRIPTION_ID (and, for ids naming another, that one).
func fleet(file *config.File) *pipeline.Fleet {
	f := &pipeline.Fleet{Connect: connectAzure}
	seen := map[string]bool{}
	add := func(sub string) {
		if sub != "" && !seen[strings.ToLower(sub)] {
			seen[strings.ToLower(sub)] = true
			f.Subscriptions = append(f.Subscriptions, sub)
		}
	}
	if file != nil {
		for _, az := range file.Azure {
			add(az.Subscription)
		}
	}
	add(os.Getenv("AZURE_SUBSCRIPTION_ID"))
	return f
}

// wireGC connects gc to the fleet. Without any subscription gc plans from
// the catalog only (nil source and executor).
func wireGC(ctx context.Context, file *config.File) (catalog.InUseSource, catalog.Executor, error) {
	f := fleet(file)
	if len(f.Subscriptions) == 0 {
		return nil, nil, nil
	}
	if err := f.Connected(); err != nil {
		return nil, nil, err
	}
	return f, f, nil
}

// revokerFor is the revoker of a copy kind (false: done by hand). Tests
// replace it.
var revokerFor = fleetRevoker

func fleetRevoker(kind catalog.CopyKind) (func(ctx context.Context) (catalog.Revoker, error), bool) {
	switch kind {
	case catalog.KindGalleryVersion, catalog.KindOnprem:
		return func(ctx context.Context) (catalog.Revoker, error) { return fleet(nil), nil }, true
	}
	return nil, false
}
