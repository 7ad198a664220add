package main

import (
	"context"
	"io"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newPublishCmd) }

// azureFlags are shared by the Azure verbs.
type azureFlags struct{ file, target, source string }

func (f *azureFlags) add(cmd *cobra.Command, fileRequired bool) {
	usage := "pipeline file (HCL)"
	if !fileRequired {
		usage += "; lets VERSION be a bare version such as 1.2.3"
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", usage)
	cmd.Flags().StringVar(&f.target, "target", "", "azure block to use when the file has several")
	if fileRequired {
		_ = cmd.MarkFlagRequired("file")
	}
}

// on is what the gallery verbs act on.
func (f *azureFlags) on(cmd *cobra.Command, arg string, events bool) pipeline.On {
	catalogFlag, _ := cmd.Flags().GetString("catalog")
	on := pipeline.On{File: f.file, Target: f.target, Arg: arg, CatalogFlag: catalogFlag, By: whoAmI("")}
	if events {
		on.Events = progressView().Events(cmd.ErrOrStderr())
	}
	return on
}

// pipelineOptions connect a pipeline file's destinations with progress on
// stderr and the test gate (cmd_testrun.go) before channel moves.
func pipelineOptions(stderr io.Writer, o pipeline.Options) pipeline.Options {
	o.By, o.Events, o.Steps, o.Gate = whoAmI(""), progressView().Events(stderr), progressView().Steps, testGate
	return o
}

func testGate(c *catalog.Catalog, f *config.File) pipeline.Gate { return publishGate(c, f) }

func newPublishCmd() *cobra.Command {
	var (
		f        azureFlags
		yes      bool
		o        pipeline.Options
		planFile string
	)
	cmd := &cobra.Command{
		Use:   "publish -f pipeline.hcl",
		Short: "Publish the image to its Azure Compute Gallery and on-prem libraries, recording it in the catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if f.file == "" && planFile == "" {
				return &usageError{msg: "give the pipeline file (-f pipeline.hcl) or a saved plan (--plan plan.json)", help: cmd.CommandPath()}
			}
			o.Target, o.Source = f.target, f.source
			o.CatalogHint = "give another --catalog, or --no-catalog to publish without recording the version"
			plan, res, err := pipeline.Publish(cmd.Context(), f.file, planFile, pipelineOptions(cmd.ErrOrStderr(), o), func(p *pipeline.Plan) (bool, error) {
				if !jsonOutput() {
					io.WriteString(cmd.ErrOrStderr(), view.PlanText(p))
				}
				return view.Approve(os.Stdin, cmd.ErrOrStderr(), yes || !p.HasChanges(), "Apply this plan?")
			})
			return view.Publish(stdout, jsonOutput(), plan, res, err)
		},
	}
	f.add(cmd, false)
	fl := cmd.Flags()
	fl.StringVar(&planFile, "plan", "", "apply exactly this saved plan (imgpipe plan --out FILE); refused when the file, the source or a destination changed since")
	fl.StringVar(&f.source, "source", "", "disk image to publish instead of the image block's source (e.g. a fresh build)")
	fl.BoolVarP(&yes, "yes", "y", false, "apply without asking")
	durationVar(fl, &o.ReplicationTimeout, "replication-timeout", 0, "override replication_timeout: how long to wait for replication before exiting 3 (it continues in Azure)")
	fl.StringVar(&o.CatalogFlag, "catalog", "", "record the version, its lineage and the run in this catalog (default: the file's catalog block, then $"+catalogEnv+", then the per-user SQLite catalog)")
	fl.BoolVar(&o.NoCatalog, "no-catalog", false, "record nothing in a catalog (imgpipe promote and gc then do not know the version)")
	fl.StringVar(&o.Version, "version", "", "version for a pipeline file without an azure block (default: the library version holding this disk, else the next patch)")
	addLockTimeoutFlag(cmd)
	return cmd
}

// reconcileConnect is reconcile.Pipeline's Connect (cmd_reconcile.go): a
// rebuild's publish of img from artifact over the file's destinations,
// recorded in cat as imgpipe reconcile, its progress on log (if any).
func reconcileConnect(ctx context.Context, path string, cat *catalog.Catalog, log io.Writer, img *config.Image, artifact string) (*pipeline.Engine, pipeline.Request, error) {
	o := pipeline.Options{Catalog: cat, NoCatalog: cat == nil, Gate: testGate}
	if log != nil {
		o = pipelineOptions(log, o)
	}
	o.By = "imgpipe reconcile"
	return pipeline.OpenFor(ctx, path, img, artifact, o)
}
