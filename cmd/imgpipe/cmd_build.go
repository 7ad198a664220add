package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newBuildCmd) }

func newBuildCmd() *cobra.Command {
	var r pipeline.BuildRequest
	var quiet bool
	c := &cobra.Command{Use: "build TEMPLATE", Short: "Run Packer on a template, find its disk artifacts and record their provenance",
		Args: cobra.ExactArgs(1), RunE: func(cmd *cobra.Command, args []string) error {
			r.Template = args[0]
			if !quiet {
				r.OnLine = view.PackerLine(os.Stderr)
			}
			r.Note = func(n string) { fmt.Fprintln(os.Stderr, "note:", n) }
			r.WithCatalog = func(f func(*catalog.Catalog) error) error { return withCatalog(cmd, required, f) }
			b, err := pipeline.Build(cmd.Context(), r)
			if err != nil {
				return err
			}
			return view.Built(stdout, jsonOutput(), b)
		}}
	f := c.Flags()
	f.StringArrayVar(&r.VarArgs, "var", nil, "template variable name=value (repeatable)")
	f.StringArrayVar(&r.VarFiles, "var-file", nil, "variables file (repeatable)")
	f.StringSliceVar(&r.Only, "only", nil, "build only these builds (Packer's -only)")
	f.StringVar(&r.WorkDir, "workdir", "", "Packer's working directory (default: the current directory)")
	f.StringVar(&r.Manifest, "manifest", "", "manifest post-processor output, relative to --workdir (default packer-manifest.json)")
	f.StringVar(&r.Packer, "packer", "", "packer program (default: packer on PATH)")
	f.StringVar(&r.Generation, "generation", "", "Hyper-V generation V1/V2 for disks whose partition table does not tell")
	f.StringVar(&r.OS, "os", "", "guest OS (linux/windows) when the manifest's custom_data does not say")
	f.BoolVarP(&quiet, "quiet", "q", false, "do not show Packer's messages")
	f.BoolVar(&r.FromManifest, "from-manifest", false, "do not run Packer: record the artifacts of the earlier run in --manifest")
	f.StringVar(&r.Image, "image", "", "image name to record the disk under (default: the manifest's custom_data image)")
	f.StringVar(&r.Version, "version", "", "version to record the disk as (default: the manifest's custom_data version)")
	addCatalogFlag(c, nil)
	return c
}
