package main

// The reconciler inside imgpipe serve (--reconcile FILE): the serve verb
// adds these flags and calls start once the catalog is open.

import (
	"context"
	"log/slog"
	"time"

	"github.com/spf13/pflag"

	"imgpipe/internal/catalog"
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
