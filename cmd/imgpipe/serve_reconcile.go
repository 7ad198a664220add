package main

// The reconciler inside imgpipe serve (--reconcile FILE): the serve verb
// adds these flags and calls start once the catalog is open.

import (
	"context"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/pflag"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/events"
	"imgpipe/internal/reconcile"
	"imgpipe/internal/rollout"
)

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
	f, err := config.Load(s.file)
	if err != nil {
		return err
	}
	if len(f.Rebuilds) == 0 {
		return &usageError{msg: s.file + " has no rebuild block: --reconcile needs one (see imgpipe reconcile --help)", help: "imgpipe serve"}
	}
	l := &reconcile.Loop{
		Reconciler: &reconcile.Reconciler{File: f, Catalog: cat, Events: &events.Emitter{Cat: cat}},
		Runner:     reconcilePipeline(f, s.file, cat, nil, s.accel),
		Rollouts:   rolloutDriver(cat),
		Interval:   s.interval,
		Report: func(rd reconcile.Round, err error) {
			if err != nil {
				slog.Warn("reconcile", "err", err)
			}
			for _, d := range rd.Decisions {
				if d.Action != reconcile.ActionNone && !d.Repeated {
					slog.Info("reconcile", "image", d.Image, "decision", d.Action, "reason", d.Reason)
				}
			}
			for _, o := range rd.Outcomes {
				slog.Info("reconcile rebuild", "image", o.Image, "state", o.State, "version", o.Version, "promoted", o.Promoted,
					"stopped", o.Stopped, "rollout", o.Rollout, "rollout_error", o.RolloutError)
			}
		},
	}
	go l.Run(ctx)
	return nil
}

// rolloutDriver is the rollout driver of the reconciler: Azure reached as
// the environment says (azure.ConnectionFromEnv), polled every
// IMGPIPE_POLL_INTERVAL when set.
func rolloutDriver(cat *catalog.Catalog) *rollout.Driver {
	d := &rollout.Driver{Cat: cat, Azure: func(ctx context.Context, sub string) (*azure.Clients, error) {
		cred, opts, err := azure.ConnectionFromEnv().Open()
		if err != nil {
			return nil, err
		}
		return azure.NewClients(sub, cred, opts)
	}}
	if v := os.Getenv("IMGPIPE_POLL_INTERVAL"); v != "" {
		if p, err := config.ParseDuration(v); err == nil && p > 0 {
			d.Poll = p
		}
	}
	return d
}
