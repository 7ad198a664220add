package main

// gc and revoke act on destinations through internal/pipeline's Fleet: Azure
// resources in the subscription each one is in, library copies in their
// library.

import (
	"context"
	"os"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
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

// revokerFor is the revoker of a copy kind (false: done by hand). Tests
// replace it.
var revokerFor = fleetRevoker

func fleetRevoker(kind catalog.CopyKind) (func(ctx context.Context) (catalog.Revoker, error), bool) {
	switch kind {
	case catalog.KindGalleryVersion, catalog.KindOnprem:
		return func(ctx context.Context) (catalog.Revoker, error) {
			return pipeline.NewFleet(connectAzure, nil, os.Getenv("AZURE_SUBSCRIPTION_ID")), nil
		}, true
	}
	return nil, false
}
