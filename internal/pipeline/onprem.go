package pipeline

// The on-prem Hyper-V library destination: one onprem block of the
// pipeline file.

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/onprem"
	"imgpipe/internal/progress"
	"imgpipe/internal/source"
)

// Onprem adds the disk (converted to VHDX) to one on-prem library.
type Onprem struct {
	Target config.OnPrem
	// Step, when set, gives the progress function of each pass of the add
	// ("hash input", "convert to VHDX", ...); done ends the last one.
	Step func(name string) progress.Func
	Done func()
}

// OnpremPlan is the on-prem destination's part of a plan.
type OnpremPlan struct {
	Library string `json:"library"`
	Image   string `json:"image"`
	Ver     string `json:"version"`
	Present bool   `json:"present"` // the library already holds this version of these bytes
	Channel string `json:"channel,omitempty"`
	req     Request
}

// Version implements DestinationPlan.
func (p *OnpremPlan) Version() string { return p.Ver }

// HasChanges implements DestinationPlan.
func (p *OnpremPlan) HasChanges() bool { return !p.Present }

// Text implements DestinationPlan.
func (p *OnpremPlan) Text() string {
	if p.Present {
		return fmt.Sprintf("  = keep      onprem %s %s in %s\n", p.Image, p.Ver, p.Library)
	}
	return fmt.Sprintf("  + add       onprem %s %s to %s (VHDX)\n", p.Image, p.Ver, p.Library)
}

// OnpremResult is what adding to one library did.
type OnpremResult struct {
	Target   string `json:"target"`
	Library  string `json:"library"`
	Path     string `json:"path"`
	SHA256   string `json:"sha256"`
	Existed  bool   `json:"existed"`
	Channel  string `json:"channel,omitempty"`
	Promoted bool   `json:"promoted"`
	Note     string `json:"note,omitempty"`
}

// Name implements Destination.
func (o *Onprem) Name() string { return "onprem " + o.Target.Name }

// Plan implements Destination.
func (o *Onprem) Plan(ctx context.Context, r Request) (DestinationPlan, error) {
	lib, err := onprem.Open(o.Target.Library)
	if err != nil {
		return nil, err
	}
	p := &OnpremPlan{Library: lib.Root(), Image: r.Image.Name, Ver: r.Version, Channel: o.Target.Channel, req: r}
	if r.Source != nil {
		if _, err := Generation(r); err != nil {
			return nil, err
		}
		if md, err := lib.Get(r.Image.Name, r.Version); err == nil && (md.InputSHA256 == r.Source.SHA256 || md.SHA256 == r.Source.SHA256) {
			p.Present = true
		}
	}
	return p, nil
}

// Generation is the Hyper-V generation of r's disk: the partition table's,
// else the image block's; they must agree.
func Generation(r Request) (string, error) {
	gen, img := r.Source.Generation, r.Image
	switch {
	case gen != "" && img.HyperVGeneration != "" && gen != img.HyperVGeneration:
		return "", fmt.Errorf("image %q declares hyperv_generation %s but the disk's partition table says %s", img.Name, img.HyperVGeneration, gen)
	case gen == "":
		gen = img.HyperVGeneration
	}
	if gen == "" {
		return "", fmt.Errorf("%s: %s; set hyperv_generation in the image block", r.Source.Path, r.Source.GenerationErr)
	}
	return gen, nil
}

// KnownVersions implements VersionLister: the library's versions, by the
// SHA-256 of what was given and of what is stored.
func (o *Onprem) KnownVersions(ctx context.Context, image string) ([]Known, error) {
	lib, err := onprem.Open(o.Target.Library)
	if err != nil {
		return nil, err
	}
	vs, err := lib.Versions(image)
	if err != nil && !errors.Is(err, onprem.ErrNotFound) {
		return nil, err
	}
	var out []Known
	for _, md := range vs {
		if md.InputSHA256 != "" {
			out = append(out, Known{Version: md.Version, SHA256: md.InputSHA256})
		}
		out = append(out, Known{Version: md.Version, SHA256: md.SHA256})
	}
	return out, nil
}

// Apply implements Destination: adds the disk (as imgpipe onprem add does)
// and returns the library copy.
func (o *Onprem) Apply(ctx context.Context, dp DestinationPlan, rec StepRecorder) (*Applied, error) {
	p, ok := dp.(*OnpremPlan)
	if !ok {
		return nil, fmt.Errorf("internal error: %T is not an on-prem plan", dp)
	}
	r := p.req
	gen, err := Generation(r)
	if err != nil {
		return nil, err
	}
	res, err := AddToLibrary(ctx, o.Target.Library, r.Image, r.Version, r.Source, gen, o.Step)
	if o.Done != nil {
		o.Done()
	}
	if err != nil {
		return nil, fmt.Errorf("onprem %q: %w", o.Target.Name, err)
	}
	out := &OnpremResult{Target: o.Target.Name, Library: p.Library, Path: res.Path, SHA256: res.Metadata.SHA256, Existed: res.Existed, Channel: o.Target.Channel}
	if rec != nil && !res.Existed {
		if err := rec.RecordStep(ctx, Step{Destination: o.Name(), Action: "add", Kind: string(catalog.KindOnprem), Name: o.Target.Name,
			ResourceID: res.Path, Fingerprint: map[string]string{"sha256": res.Metadata.SHA256}}); err != nil {
			return nil, err
		}
	}
	return &Applied{
		Copies:  []Copy{LibraryCopy(p.Library, res)},
		Channel: o.Target.Channel,
		Result:  out,
	}, nil
}

// SetChannel implements ChannelSetter.
func (o *Onprem) SetChannel(ctx context.Context, image, version, channel string) error {
	lib, err := onprem.Open(o.Target.Library)
	if err != nil {
		return err
	}
	return lib.SetChannel(image, version, channel)
}

// LibraryCopy is the catalog copy of a disk in a library.
func LibraryCopy(root string, res *onprem.AddResult) Copy {
	return Copy{Kind: catalog.KindOnprem, Location: root, ID: res.Path, Fingerprint: source.DigestOf(res.Metadata.SHA256), State: catalog.StatePresent}
}

// AddToLibrary adds src, the inspected disk, to the library at root as
// version of img with generation gen, converted to VHDX (the format Hyper-V
// differencing disks need): through onprem.AddDisk, as imgpipe onprem add
// does, without reading the source again.
func AddToLibrary(ctx context.Context, root string, img *config.Image, version string, src *source.Info, gen string, step func(string) progress.Func) (*onprem.AddResult, error) {
	lib, err := onprem.Open(root)
	if err != nil {
		return nil, err
	}
	res, _, err := onprem.AddDisk(ctx, lib, onprem.DiskRequest{
		Path: src.Path, Source: src, Image: img.Name, Version: version,
		Generation: gen, OS: strings.ToLower(cmp.Or(img.OSType, "Linux")), Step: step,
	})
	return res, err
}
