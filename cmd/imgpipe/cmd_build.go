package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/build"
	"imgpipe/internal/catalog"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newBuildCmd) }

func newBuildCmd() *cobra.Command {
	var o build.Options
	var vars []string
	var quiet, fromManifest bool
	var image, version string
	c := &cobra.Command{
		Use:   "build TEMPLATE",
		Short: "Run Packer on a template, find its disk artifacts and record their provenance",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			o.Template = args[0]
			o.Vars = map[string]string{}
			for _, kv := range vars {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return fmt.Errorf("--var %q: use --var name=value", kv)
				}
				o.Vars[k] = v
			}
			if o.Generation != "" && o.Generation != "V1" && o.Generation != "V2" {
				return fmt.Errorf("--generation %q: use V1 or V2", o.Generation)
			}
			o.OnLine = func(l build.Line) {
				if quiet {
					return
				}
				if l.Type == "raw" && len(l.Data) > 0 {
					fmt.Fprintln(os.Stderr, l.Data[0])
					return
				}
				if _, text, ok := l.UI(); ok {
					fmt.Fprintln(os.Stderr, text)
				}
			}
			run := build.Run
			if fromManifest {
				run = build.FromManifest
			}
			res, err := run(cmd.Context(), o)
			if err != nil {
				return err
			}
			todo, notes := pipeline.BuildVersions(res, image, version)
			for _, n := range notes {
				fmt.Fprintln(os.Stderr, "note:", n)
			}
			var recorded []pipeline.BuildRecord
			if len(todo) > 0 {
				err = withCatalog(cmd, required, func(c *catalog.Catalog) (err error) {
					recorded, err = pipeline.RecordBuild(cmd.Context(), c, res.Provenance, todo)
					return err
				})
				if err != nil {
					return err
				}
			}
			var lines []string
			for _, r := range recorded {
				lines = append(lines, r.Image+" "+r.Version+" in "+r.Catalog)
			}
			return draw(struct {
				*build.Result
				Recorded []pipeline.BuildRecord `json:"recorded"`
			}{res, recorded}, view.Build(res, lines))
		},
	}
	c.Flags().StringArrayVar(&vars, "var", nil, "template variable name=value (repeatable)")
	c.Flags().StringArrayVar(&o.VarFiles, "var-file", nil, "variables file (repeatable)")
	c.Flags().StringSliceVar(&o.Only, "only", nil, "build only these builds (Packer's -only)")
	c.Flags().StringVar(&o.WorkDir, "workdir", "", "Packer's working directory (default: the current directory)")
	c.Flags().StringVar(&o.Manifest, "manifest", "", "manifest post-processor output, relative to --workdir (default packer-manifest.json)")
	c.Flags().StringVar(&o.Packer, "packer", "", "packer program (default: packer on PATH)")
	c.Flags().StringVar(&o.Generation, "generation", "", "Hyper-V generation V1/V2 for disks whose partition table does not tell")
	c.Flags().StringVar(&o.OS, "os", "", "guest OS (linux/windows) when the manifest's custom_data does not say")
	c.Flags().BoolVarP(&quiet, "quiet", "q", false, "do not show Packer's messages")
	c.Flags().BoolVar(&fromManifest, "from-manifest", false, "do not run Packer: record the artifacts of the earlier run in --manifest")
	c.Flags().StringVar(&image, "image", "", "image name to record the disk under (default: the manifest's custom_data image)")
	c.Flags().StringVar(&version, "version", "", "version to record the disk as (default: the manifest's custom_data version)")
	addCatalogFlag(c, nil)
	return c
}
