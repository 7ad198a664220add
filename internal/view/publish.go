package view

// plan and publish: what the engine planned and did (the same shapes as
// before the engine existed).

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/pipeline"
)

// PlanOutput is plan's --output json: the Azure plan's fields (when there
// is an azure block) and the on-prem destinations'.
type PlanOutput struct {
	*azure.Plan
	Image   string                 `json:"image"`
	Version string                 `json:"version"`
	Onprem  []*pipeline.OnpremPlan `json:"onprem,omitempty"`
}

// PlanJSON is p as plan --output json shows it.
func PlanJSON(p *pipeline.Plan) PlanOutput {
	out := PlanOutput{Image: p.Image, Version: p.Version}
	for _, d := range p.Destinations {
		switch dp := d.Plan.(type) {
		case pipeline.AzurePlan:
			out.Plan = dp.Plan
		case *pipeline.OnpremPlan:
			out.Onprem = append(out.Onprem, dp)
		}
	}
	return out
}

// PlanText is every destination's plan as a diff for people.
func PlanText(p *pipeline.Plan) string {
	var b strings.Builder
	for _, d := range p.Destinations {
		b.WriteString(d.Plan.Text())
	}
	return b.String()
}

// Published is publish's --output json: the Azure result's fields, the
// on-prem libraries' and the catalog recorded in.
type Published struct {
	*azure.Result
	Onprem  []*pipeline.OnpremResult `json:"onprem,omitempty"`
	Catalog string                   `json:"catalog,omitempty"`
}

// PublishedOf gathers what each destination of res did.
func PublishedOf(res *pipeline.Result) Published {
	out := Published{Catalog: res.Catalog}
	for _, d := range res.Destinations {
		if d.Applied == nil {
			continue
		}
		switch r := d.Applied.Result.(type) {
		case *azure.Result:
			out.Result = r
		case *pipeline.OnpremResult:
			r.Promoted, r.Note = d.Promoted, d.Note
			out.Onprem = append(out.Onprem, r)
		}
	}
	return out
}

// OnpremOnly is publish's --output json for a file without an azure block.
func (p Published) OnpremOnly(image, version string) any {
	return struct {
		Image   string                   `json:"image"`
		Version string                   `json:"version"`
		Onprem  []*pipeline.OnpremResult `json:"onprem"`
		Catalog string                   `json:"catalog,omitempty"`
	}{image, version, p.Onprem, p.Catalog}
}

// Notes are the lines about the libraries and the catalog.
func (p Published) Notes() string {
	var b strings.Builder
	for _, o := range p.Onprem {
		verb := "added to"
		if o.Existed {
			verb = "already in"
		}
		fmt.Fprintf(&b, "%s onprem library %s: %s\n", verb, o.Library, o.Path)
		if o.Promoted {
			fmt.Fprintf(&b, "  channel %s -> this version\n", o.Channel)
		}
		if o.Note != "" {
			fmt.Fprintf(&b, "  %s\n", o.Note)
		}
	}
	if p.Catalog != "" {
		fmt.Fprintf(&b, "recorded in catalog %s\n", p.Catalog)
	}
	return b.String()
}

// Publish draws what a publish did on w and returns the error for the root
// to render: err is the engine's (nil, still replicating, or a failure after
// some destinations were served; without res, nothing is drawn).
func Publish(w io.Writer, asJSON bool, plan *pipeline.Plan, res *pipeline.Result, err error) error {
	if res == nil {
		return err
	}
	out := PublishedOf(res)
	if err != nil && !errors.Is(err, azure.ErrStillReplicating) {
		return err
	}
	if out.Result == nil { // on premises only
		if err != nil {
			return err
		}
		return Write(w, asJSON, out.OnpremOnly(res.Image, res.Version), "published "+res.Image+" "+res.Version+" on premises\n"+out.Notes())
	}
	if err != nil { // still replicating
		if asJSON {
			_ = JSON(w, out.Result)
			return Shown(err) // the result says it is still replicating
		}
		return err
	}
	head := ""
	if plan.HasChanges() {
		head = "published " + out.VersionID + "\n"
	}
	return Write(w, asJSON, out, head+out.Notes())
}

// Plan draws a plan on w (its diff, or -o json); saved names the file it
// was saved to, told on note.
func Plan(w, note io.Writer, asJSON bool, p *pipeline.Plan, saved string) error {
	if saved != "" && !asJSON {
		fmt.Fprintf(note, "saved the plan to %s: apply exactly it with imgpipe publish --plan %s\n", saved, saved)
	}
	return Write(w, asJSON, PlanJSON(p), PlanText(p))
}
