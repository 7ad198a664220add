package main

// The view of plan and publish: what the engine planned and did, as text or
// JSON (the same shapes as before the engine existed).

import (
	"errors"
	"fmt"
	"strings"

	"imgpipe/internal/azure"
	"imgpipe/internal/pipeline"
)

// publishOutput is publish's --output json.
type publishOutput struct {
	*azure.Result
	Onprem  []*pipeline.OnpremResult `json:"onprem,omitempty"`
	Catalog string                   `json:"catalog,omitempty"`
}

// planOutput is plan's --output json: the Azure plan's fields (when there
// is an azure block) and the on-prem destinations'.
type planOutput struct {
	*azure.Plan
	Image   string                 `json:"image"`
	Version string                 `json:"version"`
	Onprem  []*pipeline.OnpremPlan `json:"onprem,omitempty"`
}

func planJSON(p *pipeline.Plan) planOutput {
	out := planOutput{Image: p.Image, Version: p.Version}
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

// planText renders every destination's plan.
func planText(p *pipeline.Plan) string {
	var b strings.Builder
	for _, d := range p.Destinations {
		b.WriteString(d.Plan.Text())
	}
	return b.String()
}

// showPublished draws what a publish did; err is the engine's (nil, or
// still replicating, or a failure after some destinations were served).
func showPublished(plan *pipeline.Plan, res *pipeline.Result, err error) error {
	out := publishOutput{Catalog: res.Catalog}
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
	if err != nil && !errors.Is(err, azure.ErrStillReplicating) {
		return err
	}
	if out.Result == nil {
		// on premises only
		if err != nil {
			return err
		}
		if jsonOutput() {
			return printJSON(struct {
				Image   string                   `json:"image"`
				Version string                   `json:"version"`
				Onprem  []*pipeline.OnpremResult `json:"onprem"`
				Catalog string                   `json:"catalog,omitempty"`
			}{res.Image, res.Version, out.Onprem, out.Catalog})
		}
		fmt.Fprintf(stdout, "published %s %s on premises\n", res.Image, res.Version)
		return printPublishNotes(out)
	}
	if err != nil { // still replicating
		if jsonOutput() {
			_ = printJSON(out.Result)
			return shown(err) // the result says it is still replicating
		}
		return err
	}
	if jsonOutput() {
		return printJSON(out)
	}
	if plan.HasChanges() {
		if _, err := fmt.Fprintf(stdout, "published %s\n", out.VersionID); err != nil {
			return err
		}
	}
	return printPublishNotes(out)
}

func printPublishNotes(out publishOutput) error {
	for _, o := range out.Onprem {
		verb := "added to"
		if o.Existed {
			verb = "already in"
		}
		fmt.Fprintf(stdout, "%s onprem library %s: %s\n", verb, o.Library, o.Path)
		if o.Promoted {
			fmt.Fprintf(stdout, "  channel %s -> this version\n", o.Channel)
		}
		if o.Note != "" {
			fmt.Fprintf(stdout, "  %s\n", o.Note)
		}
	}
	if out.Catalog != "" {
		_, err := fmt.Fprintf(stdout, "recorded in catalog %s\n", out.Catalog)
		return err
	}
	return nil
}
