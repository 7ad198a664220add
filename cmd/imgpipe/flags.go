package main

import (
	"time"

	"github.com/spf13/pflag"

	"imgpipe/internal/config"
)

// durationValue is a duration flag read with the one duration grammar of
// the pipeline file (config.ParseDuration): Go durations ("90m", "36h")
// plus days and weeks ("90d", "2w").
type durationValue time.Duration

func (d *durationValue) Set(s string) error {
	v, err := config.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = durationValue(v)
	return nil
}

func (d *durationValue) String() string { return config.FormatDuration(time.Duration(*d)) }
func (d *durationValue) Type() string   { return "duration" }

// durationVar defines a duration flag (see durationValue).
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	*p = def
	fs.Var((*durationValue)(p), name, usage+" (e.g. 90m, 36h, 2d, 2w)")
}
