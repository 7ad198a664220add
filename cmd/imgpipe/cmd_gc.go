package main

import (
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newGCCmd) }

func newGCCmd() *cobra.Command {
	var image, by, pipelineFile string
	var olderThan, grace time.Duration
	var keep int
	var excludeTags, excludeRegions []string
	var yes bool
	cmd := &cobra.Command{
		Use:   "gc --keep N --older-than AGE [--yes]",
		Short: "Plan (and with --yes apply) retention: deprecate old versions, later delete them",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p := catalog.Policy{Image: image, KeepNewest: keep, OlderThan: olderThan, Grace: grace, ExcludeRegions: excludeRegions}
			for _, t := range excludeTags {
				k, v, _ := strings.Cut(t, "=")
				if k == "" {
					return fmt.Errorf("--exclude-tag %q: use KEY or KEY=VALUE", t)
				}
				if p.ExcludeTags == nil {
					p.ExcludeTags = map[string]string{}
				}
				p.ExcludeTags[k] = v
			}
			var file *config.File
			if pipelineFile != "" {
				var err error
				if file, err = config.Load(pipelineFile); err != nil {
					return err
				}
				p = pipeline.WithRetention(p, file.Retention, cmd.Flags().Changed) // where no flag says otherwise
			}
			return withCatalogOf(cmd, file, required, func(c *catalog.Catalog) error {
				rep, err := pipeline.GC(cmd.Context(), c, pipeline.NewFleet(connectAzure, file, os.Getenv("AZURE_SUBSCRIPTION_ID")), p, yes, whoAmI(by))
				if rep == nil {
					return err
				}
				if rep.Result == nil { // planned only
					if jsonOutput() {
						if err := printJSON(struct {
							*catalog.GCPlan
							AzureConsulted bool `json:"azure_consulted"`
							Applied        bool `json:"applied"`
						}{rep.Plan, rep.AzureConsulted, false}); err != nil {
							return err
						}
					} else if err := printText(view.GCPlan(rep.Plan, rep.AzureConsulted)); err != nil {
						return err
					}
					return err
				}
				if jsonOutput() {
					if perr := printJSON(struct {
						Plan   *catalog.GCPlan   `json:"plan"`
						Result *catalog.GCResult `json:"result"`
					}{rep.Plan, rep.Result}); perr != nil && err == nil {
						err = perr
					}
					return err
				}
				if rep.Plan != nil {
					_ = printText(view.GCPlan(rep.Plan, true))
				}
				_ = printText(view.GCResult(rep.Result))
				return err
			})
		},
	}
	addCatalogFlag(cmd, nil)
	f := cmd.Flags()
	f.IntVar(&keep, "keep", 3, "keep the N newest usable versions of each image")
	durationVar(f, &olderThan, "older-than", 30*24*time.Hour, "only versions older than this age go")
	durationVar(f, &grace, "grace", 14*24*time.Hour, "time between deprecation and deletion")
	f.StringVar(&image, "image", "", "only this image (default: every image)")
	f.StringArrayVar(&excludeTags, "exclude-tag", nil, "never touch versions with this tag (KEY or KEY=VALUE; repeatable)")
	f.StringArrayVar(&excludeRegions, "exclude-region", nil, "never touch versions replicated to this region (repeatable)")
	f.BoolVar(&yes, "yes", false, "apply the plan (default: only show it)")
	f.StringVar(&by, "by", "", "who runs gc (default $USER)")
	f.StringVarP(&pipelineFile, "file", "f", "", "pipeline file: its retention block (where no flag is given), catalog block and azure subscriptions")
	addLockTimeoutFlag(cmd)
	return cmd
}
