package main

// The view of plan and publish (internal/view draws the shapes).

import (
	"errors"

	"imgpipe/internal/azure"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

// showPublished draws what a publish did; err is the engine's (nil, or
// still replicating, or a failure after some destinations were served).
func showPublished(plan *pipeline.Plan, res *pipeline.Result, err error) error {
	out := view.PublishedOf(res)
	if err != nil && !errors.Is(err, azure.ErrStillReplicating) {
		return err
	}
	if out.Result == nil { // on premises only
		if err != nil {
			return err
		}
		return draw(out.OnpremOnly(res.Image, res.Version), "published "+res.Image+" "+res.Version+" on premises\n"+out.Notes())
	}
	if err != nil { // still replicating
		if jsonOutput() {
			_ = printJSON(out.Result)
			return shown(err) // the result says it is still replicating
		}
		return err
	}
	head := ""
	if plan.HasChanges() {
		head = "published " + out.VersionID + "\n"
	}
	return draw(out, head+out.Notes())
}
