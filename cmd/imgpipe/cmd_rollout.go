package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/rollout"
	"imgpipe/internal/view"
)

func init() { register(newRolloutCmd) }

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll a promoted version out to what runs the image, and follow, pause, resume or roll it back",
	}
	cmd.AddCommand(newRolloutStartCmd(), newRolloutStatusCmd(), newRolloutScriptsCmd(),
		newRolloutVerb("advance ID", "Look again: do the next step of a running rollout (for cron; the reconciler does it too)", (*rollout.Driver).Get, nil),
		newRolloutVerb("pause ID", "Pause a running rollout before its next batch", nil, (*rollout.Driver).Pause),
		newRolloutVerb("resume ID", "Resume a paused rollout (after an unhealthy batch is fixed, or by hand)", (*rollout.Driver).Resume, nil),
		newRolloutVerb("rollback ID", "Roll the targets of a rollout back to the version they ran before", (*rollout.Driver).Rollback, nil))
	return cmd
}

// rolloutFlags are the flags of the verbs that drive a rollout.
type rolloutFlags struct {
	az     azureFlags
	poll   time.Duration
	noWait bool
}

func (f *rolloutFlags) add(cmd *cobra.Command, wait bool) {
	f.az.add(cmd, false)
	cmd.Flags().DurationVar(&f.poll, "poll", 5*time.Second, "how often to look at the upgrade's progress")
	if wait {
		cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "record the step and return; imgpipe rollout advance or the reconciler carries on")
	}
}

// driver connects a rollout driver to the catalog and to Azure (through
// the pipeline file's azure block, or the environment), one connection per
// subscription; its progress lines go to stderr.
func (f *rolloutFlags) driver(cmd *cobra.Command, cat *catalog.Catalog) *rollout.Driver {
	errw := cmd.ErrOrStderr()
	return &rollout.Driver{Cat: cat, Poll: f.poll,
		Azure: rollout.Connections(func(sub string) (*azure.Clients, error) {
			t, err := pipeline.OpenTarget(f.az.file, f.az.target, sub)
			if err != nil {
				return nil, err
			}
			return t.Publisher.Clients, nil
		}),
		Report: func(s rollout.Step) {
			if !jsonOutput() {
				fmt.Fprintln(errw, view.StepLine(s))
			}
		}}
}

// drive runs the rollout (unless --no-wait) and draws where it ended.
func (f *rolloutFlags) drive(cmd *cobra.Command, d *rollout.Driver, r catalog.Rollout) error {
	var err error
	if !f.noWait {
		r, err = d.Run(cmd.Context(), r.ID)
	}
	if perr := view.Rollout(stdout, jsonOutput(), r, true); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

func newRolloutStartCmd() *cobra.Command {
	var (
		f                rolloutFlags
		t                rollout.Targets
		channel, prev    string
		maxBatch, maxBad int
		pause            time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start IMAGE VERSION",
		Short: "Start a rollout of a version and follow it until imgpipe has done what it can",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var file *config.File
			var resolve func(string) (azure.ResourceID, error)
			if f.az.file != "" {
				var err error
				if file, err = config.Load(f.az.file); err != nil {
					return err
				}
				resolve = func(arg string) (azure.ResourceID, error) {
					return pipeline.ResolveVersion(f.az.file, f.az.target, arg)
				}
			}
			t.MaxBatchPercent = ifGiven(cmd, "max-batch", &maxBatch)
			t.MaxUnhealthyPercent = ifGiven(cmd, "max-unhealthy", &maxBad)
			t.Pause = ifGiven(cmd, "pause", &pause)
			pol, err := rollout.PolicyFor(file, args[0], t)
			if err != nil {
				return err
			}
			ref, o, err := rollout.VersionArg(args[0], args[1], resolve)
			if err != nil {
				return err
			}
			o.Channel, o.Previous = channel, prev
			return withCatalogOf(cmd, file, required, func(cat *catalog.Catalog) error {
				d := f.driver(cmd, cat)
				r, err := d.Start(cmd.Context(), pol, ref, o)
				if err != nil {
					return err
				}
				return f.drive(cmd, d, r)
			})
		},
	}
	f.add(cmd, true)
	addCatalogFlag(cmd, nil)
	fl := cmd.Flags()
	fl.StringArrayVar(&t.ScaleSets, "scale-set", nil, "resource id of a scale set to roll (repeatable; replaces the file's targets)")
	fl.StringArrayVar(&t.VMs, "vm", nil, "resource id of a standalone VM to replace (repeatable)")
	fl.StringVar(&t.HostsChannel, "hosts", "", "also the on-prem hosts of this channel (needs -f for the library)")
	fl.StringVar(&channel, "channel", "prod", "the channel the version was promoted to (finds the version to roll back to)")
	fl.StringVar(&prev, "previous", "", "the version to roll back to (default: the channel's version before this one)")
	fl.IntVar(&maxBatch, "max-batch", 0, "percent of a scale set's instances upgraded at once, 5-100")
	fl.IntVar(&maxBad, "max-unhealthy", 0, "percent of upgraded instances that may be unhealthy before the rollout pauses, 0-100")
	fl.DurationVar(&pause, "pause", 0, "wait between batches")
	return cmd
}

// ifGiven is v when the flag name is on the command line, else nil.
func ifGiven[T any](cmd *cobra.Command, name string, v *T) *T {
	if cmd.Flags().Changed(name) {
		return v
	}
	return nil
}

// rolloutIDArg is the Args of the verbs on one rollout: ID, read into *id.
func rolloutIDArg(id *int64) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := cobra.ExactArgs(1)(cmd, args); err != nil {
			return err
		}
		n, err := strconv.ParseInt(args[0], 10, 64)
		if err != nil || n <= 0 {
			return fmt.Errorf("%q is not a rollout id (imgpipe rollout status lists them)", args[0])
		}
		*id = n
		return nil
	}
}

func newRolloutStatusCmd() *cobra.Command {
	var id int64
	var limit int
	cmd := catalogVerb("status [IMAGE]", "List recorded rollouts, or show one with each target and member", cobra.MaximumNArgs(1),
		func(cmd *cobra.Command, args []string, cat *catalog.Catalog) error {
			if id > 0 {
				r, err := cat.RolloutByID(cmd.Context(), id)
				if err != nil {
					return err
				}
				return view.Rollout(stdout, jsonOutput(), r, true)
			}
			rs, err := cat.Rollouts(cmd.Context(), firstArg(args), limit)
			if err != nil {
				return err
			}
			return view.Rollouts(stdout, jsonOutput(), rs)
		})
	cmd.Flags().Int64Var(&id, "id", 0, "show this rollout with each target and member")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rollouts")
	return cmd
}

// newRolloutVerb makes the verbs that act on one recorded rollout: act
// (then the rollout runs on, unless --no-wait), or pause with --reason.
func newRolloutVerb(use, short string, act func(*rollout.Driver, context.Context, int64) (catalog.Rollout, error),
	pause func(*rollout.Driver, context.Context, int64, string) (catalog.Rollout, error)) *cobra.Command {
	var (
		f      rolloutFlags
		id     int64
		reason string
	)
	cmd := catalogVerb(use, short, rolloutIDArg(&id), func(cmd *cobra.Command, _ []string, cat *catalog.Catalog) error {
		d := f.driver(cmd, cat)
		if pause != nil {
			r, err := pause(d, cmd.Context(), id, reason)
			if err != nil {
				return err
			}
			return view.Rollout(stdout, jsonOutput(), r, false)
		}
		r, err := act(d, cmd.Context(), id)
		if err != nil {
			return err
		}
		return f.drive(cmd, d, r)
	})
	f.add(cmd, pause == nil)
	if pause != nil {
		cmd.Flags().StringVar(&reason, "reason", "", "why (recorded, and shown by status)")
	}
	return cmd
}

func newRolloutScriptsCmd() *cobra.Command {
	var (
		dir string
		id  int64
	)
	args := func(cmd *cobra.Command, args []string) error {
		if err := rolloutIDArg(&id)(cmd, args); err != nil || dir != "" {
			return err
		}
		return errors.New("--dir is required: the folder to write the scripts to")
	}
	cmd := catalogVerb("scripts ID --dir DIR", "Write the replacement scripts (hosts) and plans (VMs) of a rollout, one file per member", args,
		func(cmd *cobra.Command, _ []string, cat *catalog.Catalog) error {
			files, err := rollout.ScriptsOf(cmd.Context(), cat, id, dir)
			if err != nil {
				return err
			}
			return view.Scripts(stdout, jsonOutput(), id, files)
		})
	cmd.Flags().StringVar(&dir, "dir", "", "folder to write the scripts and plans to")
	return cmd
}
