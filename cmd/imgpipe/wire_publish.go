package main

// The wiring of plan and publish: the pipeline file's destinations, the
// source, the catalog, connected into one internal/pipeline engine.

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"imgpipe/internal/atomicfile"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/source"
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
	r := pipeline.Request{Image: w.image, Version: version}
	src := cmp.Or(sourceFlag, w.image.Source)
	if src == "" && w.image.Packer != nil && w.image.Packer.Artifact != "" {
		if _, err := os.Stat(w.image.Packer.Artifact); err == nil || w.az == nil {
			src = w.image.Packer.Artifact
		}
	}
	if src == "" {
		if w.az == nil {
			return r, fmt.Errorf("image %q has no disk yet: run imgpipe build first, or pass --source DISK", w.image.Name)
		}
		return r, nil // built by Packer, not built yet: plan only
	}
	info, err := source.Inspect(ctx, src)
	if err != nil {
		return r, err
	}
	r.Source = info
	return r, nil
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
	return e
}

// fileSHA256 is the hex SHA-256 of a (small) file: the pipeline file a
// saved plan was made from.
func fileSHA256(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// savePlan writes plan, made from the pipeline file, to out.
func savePlan(plan *pipeline.Plan, file, out string) error {
	abs, err := filepath.Abs(file)
	if err != nil {
		return err
	}
	sum, err := fileSHA256(file)
	if err != nil {
		return err
	}
	saved, err := plan.Save(abs, sum, time.Now())
	if err != nil {
		return err
	}
	b, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(out, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("save the plan: %w", err)
	}
	return nil
}

// readPlan reads a saved plan.
func readPlan(path string) (*pipeline.Saved, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read the saved plan: %w", err)
	}
	defer f.Close()
	return pipeline.ReadSaved(f)
}

// catalogIfPresent opens the catalog plan decides versions with, if one is
// configured or the per-user one exists.
func (w *wiring) catalogIfPresent(ctx context.Context) (*catalog.Catalog, error) {
	return openCatalogWith(ctx, catalogChoice{file: w.file, policy: ifPresent})
}
