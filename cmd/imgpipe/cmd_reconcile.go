package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/events"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/reconcile"
	"imgpipe/internal/rollout"
	"imgpipe/internal/testrun"
	"imgpipe/internal/view"
)

func init() { register(newReconcileCmd) }

func newReconcileCmd() *cobra.Command {
	var file, accel string
	var dryRun bool
	c := &cobra.Command{
		Use:   "reconcile -f pipeline.hcl",
		Short: "Rebuild images from source when their rebuild policy says so (drift, revocation, a newer parent, a schedule)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := loadRebuilds(file, addRebuild, cmd.CommandPath())
			if err != nil {
				return err
			}
			return withCatalogOf(cmd, f, required, func(cat *catalog.Catalog) error {
				r := &reconcile.Reconciler{File: f, Catalog: cat, Events: &events.Emitter{Cat: cat}}
				var log io.Writer
				if !jsonOutput() {
					log = cmd.ErrOrStderr()
				}
				rd, err := r.Evaluate(cmd.Context(), dryRun, reconcilePipeline(f, file, cat, log, accel), func(d reconcile.Decision) {
					if log != nil {
						fmt.Fprintf(log, "%s: %s\n", d.Image, d.Reason)
					}
				})
				if err != nil {
					return err
				}
				if err := view.Decisions(stdout, jsonOutput(), dryRun, rd); err != nil {
					return err
				}
				return rd.Err()
			})
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "pipeline file (HCL) with rebuild blocks")
	_ = c.MarkFlagRequired("file")
	c.Flags().BoolVar(&dryRun, "dry-run", false, "print the decisions with their reasons and change nothing")
	c.Flags().StringVar(&accel, "accel", "auto", "the test gate's qemu acceleration: auto (KVM when /dev/kvm opens, else TCG), kvm or tcg")
	addCatalogFlag(c, nil)
	c.AddCommand(newReconcileResumeCmd(), newReconcileHistoryCmd())
	return c
}

// addRebuild is what to do about a pipeline file without a rebuild block.
const addRebuild = "add rebuild { on_drift { hosts = 3 } } (see --help)"

// loadRebuilds loads a pipeline file that must have a rebuild block: hint
// says what to do when it has none, help whose --help to read.
func loadRebuilds(path, hint, help string) (*config.File, error) {
	f, err := reconcile.LoadFile(path)
	if errors.Is(err, reconcile.ErrNoRebuild) {
		return nil, &usageError{msg: err.Error() + ": " + hint, help: help}
	}
	return f, err
}

func newReconcileResumeCmd() *cobra.Command {
	var file, by string
	c := &cobra.Command{
		Use:   "resume IMAGE -f pipeline.hcl",
		Short: "Resume the loop of an image stopped by a failed rebuild",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := loadRebuilds(file, addRebuild, cmd.CommandPath())
			if err != nil {
				return err
			}
			return withCatalogOf(cmd, f, required, func(cat *catalog.Catalog) error {
				r := &reconcile.Reconciler{File: f, Catalog: cat, Events: &events.Emitter{Cat: cat}}
				rec, err := r.Resume(cmd.Context(), args[0], whoAmI(by))
				if err != nil {
					return err
				}
				return view.Resumed(stdout, jsonOutput(), rec)
			})
		},
	}
	c.Flags().StringVarP(&file, "file", "f", "", "pipeline file (HCL) with the image's rebuild block")
	_ = c.MarkFlagRequired("file")
	c.Flags().StringVar(&by, "by", "", "who resumes it (default: the user name)")
	addCatalogFlag(c, nil)
	return c
}

func newReconcileHistoryCmd() *cobra.Command {
	var limit int
	c := catalogVerb("history [IMAGE]", "List the reconciler's recorded decisions, newest first", cobra.MaximumNArgs(1),
		func(cmd *cobra.Command, args []string, cat *catalog.Catalog) error {
			ds, err := cat.Decisions(cmd.Context(), catalog.DecisionFilter{Limit: limit, Image: firstArg(args)})
			if err != nil {
				return err
			}
			return view.History(stdout, jsonOutput(), ds)
		})
	c.Flags().IntVar(&limit, "limit", 50, "how many decisions to list")
	return c
}

// reconcilePipeline is the runner of rebuilds: imgpipe's build, publish,
// test gate and promotion over the pipeline file's destinations.
func reconcilePipeline(f *config.File, path string, cat *catalog.Catalog, log io.Writer, accel string) *reconcile.Pipeline {
	p := &reconcile.Pipeline{File: f, Catalog: cat, Tester: &testrun.Qemu{Accel: accel}, Stager: stagerFor(f),
		Rollout: reconcile.RolloutWith(rollout.EnvDriver(cat), f),
		Connect: func(ctx context.Context, img *config.Image, artifact string) (*pipeline.Engine, pipeline.Request, error) {
			return reconcileConnect(ctx, path, cat, log, img, artifact)
		}}
	if log != nil {
		p.Progress = func(s string) { fmt.Fprintln(log, s) }
		p.Tester.Progress = p.Progress
	}
	return p
}

// serveReconcile is the reconciler inside imgpipe serve (--reconcile FILE):
// the serve verb adds these flags and calls start once the catalog is open.
type serveReconcile struct {
	file     string
	interval time.Duration
	accel    string
}

func (s *serveReconcile) add(f *pflag.FlagSet) {
	f.StringVar(&s.file, "reconcile", "", "pipeline file whose rebuild policies serve evaluates every --reconcile-interval (as imgpipe reconcile; replicas take turns)")
	durationVar(f, &s.interval, "reconcile-interval", 10*time.Minute, "time between two reconciler rounds")
	f.StringVar(&s.accel, "reconcile-accel", "auto", "the test gate's qemu acceleration for rebuilds: auto, kvm or tcg")
}

// start loads the pipeline file (an error stops serve from starting) and
// runs the reconciler's rounds in the background until ctx ends.
func (s *serveReconcile) start(ctx context.Context, cat *catalog.Catalog) error {
	if s.file == "" {
		return nil
	}
	f, err := loadRebuilds(s.file, "--reconcile needs one (see imgpipe reconcile --help)", "imgpipe serve")
	if err != nil {
		return err
	}
	l := &reconcile.Loop{Reconciler: &reconcile.Reconciler{File: f, Catalog: cat, Events: &events.Emitter{Cat: cat}},
		Runner: reconcilePipeline(f, s.file, cat, nil, s.accel), Rollouts: rollout.EnvDriver(cat), Interval: s.interval,
		Report: reconcile.LogRounds(slog.Default())}
	go l.Run(ctx)
	return nil
}
