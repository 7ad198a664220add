package main

// The wiring of plan and publish: the pipeline file's destinations, the
// source, the catalog, connected into one internal/pipeline engine.

import (
	"context"
	"io"
	"time"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/supplychain"
)

// openPublishCatalog opens the catalog publish records into (required);
// nil with --no-catalog.
func openPublishCatalog(ctx context.Context, flag string, off bool, file *config.File) (*catalog.Catalog, error) {
	if off {
		return nil, nil
	}
	return openCatalogWith(ctx, catalogChoice{flag: flag, file: file, policy: required,
		hint: "give another --catalog, or --no-catalog to publish without recording the version"})
}

// wiring is a pipeline file's destinations for one image.
type wiring struct {
	file   *config.File
	image  *config.Image
	az     *config.Azure // nil: on premises only
	s      *azureSession
	onprem []*pipeline.Onprem
}

// openWiring loads the pipeline file and connects its destinations: the
// azure block (--target when several), then the image's onprem blocks.
func openWiring(ctx context.Context, f azureFlags, timeout time.Duration) (*wiring, error) {
	file, err := config.Load(f.file)
	if err != nil {
		return nil, err
	}
	w := &wiring{file: file}
	if len(file.Azure) > 0 || f.target != "" {
		s, err := openAzure(f, "")
		if err != nil {
			return nil, err
		}
		if timeout > 0 {
			s.az.ReplicationTimeout = timeout
		}
		w.s, w.az, w.image = s, s.az, s.image
	} else {
		if len(file.OnPrem) == 0 {
			return nil, pipeline.ErrNoDestination
		}
		w.image = file.Image(file.OnPrem[0].Image)
	}
	for _, o := range file.OnPrem {
		if o.Image == w.image.Name {
			w.onprem = append(w.onprem, &pipeline.Onprem{Target: o})
		}
	}
	return w, nil
}

// request inspects the source (--source, the image block's, or Packer's
// artifact once built) in one read.
func (w *wiring) request(ctx context.Context, sourceFlag, version string) (pipeline.Request, error) {
	info, err := pipeline.InspectSource(ctx, w.image, sourceFlag, w.az != nil)
	return pipeline.Request{Image: w.image, Version: version, Source: info}, err
}

// progress draws the destinations' progress on stderr.
func (w *wiring) progress(stderr io.Writer) {
	if w.s != nil {
		w.s.pub.OnEvent = progressReporter(stderr)
	}
	for _, o := range w.onprem {
		o.Step, o.Done = stepBars()
	}
}

// engine is the pipeline engine over w's destinations, recording in cat.
func (w *wiring) engine(cat *catalog.Catalog) *pipeline.Engine {
	e := &pipeline.Engine{Catalog: cat, By: whoAmI("")}
	if w.s != nil {
		az := &pipeline.Azure{Target: *w.az, Publisher: w.s.pub}
		if cat != nil {
			image := w.image.Name
			az.Tags = func(ctx context.Context, version string) (map[string]string, error) {
				return supplychain.GalleryTags(ctx, cat, catalog.Ref{Image: image, Version: version})
			}
		}
		e.Destinations = append(e.Destinations, az)
	}
	for _, o := range w.onprem {
		e.Destinations = append(e.Destinations, o)
	}
	if cat != nil {
		e.Gate = publishGate(cat, w.file) // the test gate before a channel that requires a test (cmd_testrun.go)
	}
	return e
}
