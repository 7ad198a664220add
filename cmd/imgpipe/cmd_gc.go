package main

import (
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newGCCmd) }

// revokerFor is the revoker of a copy kind (false: done by hand). Tests
// replace it.
var revokerFor = pipeline.RevokerFor

func newGCCmd() *cobra.Command {
	var (
		p                   catalog.Policy
		by, file, catalogFl string
		excludeTags         []string
		yes                 bool
	)
	cmd := &cobra.Command{
		Use:   "gc --keep N --older-than AGE [--yes]",
		Short: "Plan (and with --yes apply) retention: deprecate old versions, later delete them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := pipeline.ExcludeTags(p, excludeTags)
			if err != nil {
				return err
			}
			rep, err := pipeline.GCFile(cmd.Context(), file, catalogFl, p, cmd.Flags().Changed, yes, whoAmI(by))
			return view.GC(stdout, jsonOutput(), rep, err)
		},
	}
	addCatalogFlag(cmd, &catalogFl)
	f := cmd.Flags()
	f.IntVar(&p.KeepNewest, "keep", 3, "keep the N newest usable versions of each image")
	durationVar(f, &p.OlderThan, "older-than", 30*24*time.Hour, "only versions older than this age go")
	durationVar(f, &p.Grace, "grace", 14*24*time.Hour, "time between deprecation and deletion")
	f.StringVar(&p.Image, "image", "", "only this image (default: every image)")
	f.StringArrayVar(&excludeTags, "exclude-tag", nil, "never touch versions with this tag (KEY or KEY=VALUE; repeatable)")
	f.StringArrayVar(&p.ExcludeRegions, "exclude-region", nil, "never touch versions replicated to this region (repeatable)")
	f.BoolVar(&yes, "yes", false, "apply the plan (default: only show it)")
	f.StringVar(&by, "by", "", "who runs gc (default $USER)")
	f.StringVarP(&file, "file", "f", "", "pipeline file: its retention block (where no flag is given), catalog block and azure subscriptions")
	addLockTimeoutFlag(cmd)
	return cmd
}
