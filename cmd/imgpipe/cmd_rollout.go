package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/rollout"
)

func init() { register(newRolloutCmd) }

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll a promoted version out to what runs the image, and follow, pause, resume or roll it back",
	}
	cmd.AddCommand(newRolloutStartCmd(), newRolloutStatusCmd(), newRolloutAdvanceCmd(),
		newRolloutPauseCmd(), newRolloutResumeCmd(), newRolloutRollbackCmd(), newRolloutScriptsCmd())
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
	addCatalogFlag(cmd, nil)
	cmd.Flags().DurationVar(&f.poll, "poll", 5*time.Second, "how often to look at the upgrade's progress")
	if wait {
		cmd.Flags().BoolVar(&f.noWait, "no-wait", false, "record the step and return; imgpipe rollout advance or the reconciler carries on")
	}
}

// driver connects a rollout driver to the catalog and to Azure (through
// the pipeline file's azure block, or the environment), one connection per
// subscription; its progress lines go to stderr.
func (f *rolloutFlags) driver(cmd *cobra.Command, cat *catalog.Catalog) *rollout.Driver {
	conns := map[string]*azure.Clients{}
	errw := cmd.ErrOrStderr()
	return &rollout.Driver{Cat: cat, Poll: f.poll,
		Azure: func(_ context.Context, sub string) (*azure.Clients, error) {
			if c := conns[sub]; c != nil {
				return c, nil
			}
			s, err := openAzure(f.az, sub)
			if err != nil {
				return nil, err
			}
			conns[sub] = s.pub.Clients
			return s.pub.Clients, nil
		},
		Report: func(s rollout.Step) {
			if !jsonOutput() {
				fmt.Fprintln(errw, stepLine(s))
			}
		}}
}

func stepLine(s rollout.Step) string {
	line := fmt.Sprintf("rollout %d step %d: %s", s.Rollout, s.N, s.Action)
	if s.Target != "" {
		line += " " + shortTarget(s.Target)
	}
	if s.Total > 0 {
		line += fmt.Sprintf(" (%d/%d on %s)", s.Done, s.Total, s.Version)
	}
	if s.Detail != "" {
		line += ": " + s.Detail
	}
	return line
}

func shortTarget(t string) string {
	if strings.HasPrefix(t, "/subscriptions/") {
		return t[strings.LastIndex(t, "/")+1:]
	}
	return t
}

// drive runs the rollout (unless --no-wait) and draws where it ended.
func (f *rolloutFlags) drive(cmd *cobra.Command, d *rollout.Driver, r catalog.Rollout) error {
	var err error
	if !f.noWait {
		r, err = d.Run(cmd.Context(), r.ID)
	}
	if perr := drawRollout(r, true); perr != nil {
		return errors.Join(err, perr)
	}
	return err
}

func newRolloutStartCmd() *cobra.Command {
	var (
		f           rolloutFlags
		scaleSets   []string
		vms         []string
		channel     string
		previous    string
		maxBatch    int
		maxBad      int
		pause       time.Duration
		hostChannel string
	)
	cmd := &cobra.Command{
		Use:   "start IMAGE VERSION",
		Short: "Start a rollout of a version and follow it until imgpipe has done what it can",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			var file *config.File
			if f.az.file != "" {
				var err error
				if file, err = config.Load(f.az.file); err != nil {
					return err
				}
			}
			t := rollout.Targets{ScaleSets: scaleSets, VMs: vms, HostsChannel: hostChannel}
			if cmd.Flags().Changed("max-batch") {
				t.MaxBatchPercent = &maxBatch
			}
			if cmd.Flags().Changed("max-unhealthy") {
				t.MaxUnhealthyPercent = &maxBad
			}
			if cmd.Flags().Changed("pause") {
				t.Pause = &pause
			}
			pol, err := rollout.PolicyFor(file, args[0], t)
			if err != nil {
				return err
			}
			ref, o, err := rolloutVersion(f.az, args[0], args[1])
			if err != nil {
				return err
			}
			o.Channel, o.Previous = channel, previous
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
	cmd.Flags().StringArrayVar(&scaleSets, "scale-set", nil, "resource id of a scale set to roll (repeatable; replaces the file's targets)")
	cmd.Flags().StringArrayVar(&vms, "vm", nil, "resource id of a standalone VM to replace (repeatable)")
	cmd.Flags().StringVar(&hostChannel, "hosts", "", "also the on-prem hosts of this channel (needs -f for the library)")
	cmd.Flags().StringVar(&channel, "channel", "prod", "the channel the version was promoted to (finds the version to roll back to)")
	cmd.Flags().StringVar(&previous, "previous", "", "the version to roll back to (default: the channel's version before this one)")
	cmd.Flags().IntVar(&maxBatch, "max-batch", 0, "percent of a scale set's instances upgraded at once, 5-100")
	cmd.Flags().IntVar(&maxBad, "max-unhealthy", 0, "percent of upgraded instances that may be unhealthy before the rollout pauses, 0-100")
	cmd.Flags().DurationVar(&pause, "pause", 0, "wait between batches")
	return cmd
}

// rolloutVersion reads VERSION: a bare version (the gallery version from
// -f's azure block when given, else from the catalog), or a version id.
func rolloutVersion(f azureFlags, image, arg string) (catalog.Ref, rollout.StartOptions, error) {
	ref := catalog.Ref{Image: image, Version: arg}
	if !strings.HasPrefix(arg, "/") && f.file == "" {
		if !config.ValidVersion(arg) {
			return ref, rollout.StartOptions{}, fmt.Errorf("%q is not a version (Major.Minor.Patch) or a gallery image version id", arg)
		}
		return ref, rollout.StartOptions{}, nil
	}
	id, err := resolveVersionArg(f, arg)
	if err != nil && !strings.HasPrefix(arg, "/") && config.ValidVersion(arg) {
		return ref, rollout.StartOptions{}, nil // a file without an azure block: the catalog has the gallery version, if any
	}
	if err != nil {
		return ref, rollout.StartOptions{}, err
	}
	if id.Kind() != "version" {
		return ref, rollout.StartOptions{}, fmt.Errorf("%s is not a gallery image version", arg)
	}
	ref.Version = id.Version
	return ref, rollout.StartOptions{VersionID: id.String()}, nil
}

// drawRollout prints a rollout: -o json the record, else a summary and a
// row per member (with its plan's first line when it has one).
func drawRollout(r catalog.Rollout, withMembers bool) error {
	if jsonOutput() {
		return printJSON(r)
	}
	fmt.Fprintf(stdout, "rollout %d: %s %s to %s: %s (%s)\nstarted %s, updated %s, %d steps", r.ID, r.Ref.Image, r.Ref.Version, r.Target, r.State, dash(r.Detail),
		fmtWhen(r.StartedAt), fmtWhen(r.UpdatedAt), r.Steps)
	if r.Previous != "" {
		fmt.Fprintf(stdout, ", rolls back to %s", r.Previous)
	}
	if r.RollbackOf != 0 {
		fmt.Fprintf(stdout, ", rollback of rollout %d", r.RollbackOf)
	}
	fmt.Fprintln(stdout)
	if len(r.Targets) > 1 {
		rows := make([][]string, 0, len(r.Targets))
		for _, t := range r.Targets {
			rows = append(rows, []string{shortTarget(t.Target), t.Kind, t.State, strconv.Itoa(t.Batch), dash(t.Detail)})
		}
		if err := printTable([]string{"TARGET", "KIND", "STATE", "BATCH", "DETAIL"}, rows); err != nil {
			return err
		}
	}
	if !withMembers {
		return nil
	}
	rows := make([][]string, 0, len(r.Members))
	for _, m := range r.Members {
		plan, _, _ := strings.Cut(m.Plan, "\n")
		rows = append(rows, []string{m.Member, shortTarget(m.Target), dash(m.Version), m.State, strconv.FormatBool(m.Healthy), dash(plan)})
	}
	return printTable([]string{"MEMBER", "TARGET", "VERSION", "STATE", "HEALTHY", "PLAN"}, rows)
}

func rolloutID(arg string) (int64, error) {
	id, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || id <= 0 {
		return 0, fmt.Errorf("%q is not a rollout id (imgpipe rollout status lists them)", arg)
	}
	return id, nil
}

func newRolloutStatusCmd() *cobra.Command {
	var (
		id    int64
		limit int
	)
	cmd := &cobra.Command{
		Use:   "status [IMAGE]",
		Short: "List recorded rollouts, or show one with each target and member",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withCatalog(cmd, required, func(cat *catalog.Catalog) error {
				if id > 0 {
					r, err := cat.RolloutByID(cmd.Context(), id)
					if err != nil {
						return err
					}
					return drawRollout(r, true)
				}
				image := ""
				if len(args) == 1 {
					image = args[0]
				}
				rs, err := cat.Rollouts(cmd.Context(), image, limit)
				if err != nil {
					return err
				}
				if jsonOutput() {
					if rs == nil {
						rs = []catalog.Rollout{}
					}
					return printJSON(rs)
				}
				rows := make([][]string, 0, len(rs))
				for _, r := range rs {
					up := 0
					for _, m := range r.Members {
						if m.State == azure.InstanceUpgraded {
							up++
						}
					}
					rows = append(rows, []string{strconv.FormatInt(r.ID, 10), r.Ref.Image, r.Ref.Version, r.Kind, shortTarget(r.Target), r.State,
						fmt.Sprintf("%d/%d", up, len(r.Members)), fmtWhen(r.StartedAt), dash(r.Detail)})
				}
				return printTable([]string{"ID", "IMAGE", "VERSION", "KIND", "TARGET", "STATE", "UPGRADED", "STARTED", "DETAIL"}, rows)
			})
		},
	}
	addCatalogFlag(cmd, nil)
	cmd.Flags().Int64Var(&id, "id", 0, "show this rollout with each target and member")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rollouts")
	return cmd
}

// newRolloutVerb makes the verbs that act on one recorded rollout.
func newRolloutVerb(use, short string, wait bool, act func(ctx context.Context, d *rollout.Driver, id int64, reason string) (catalog.Rollout, error)) *cobra.Command {
	var (
		f      rolloutFlags
		reason string
	)
	cmd := &cobra.Command{
		Use: use, Short: short,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := rolloutID(args[0])
			if err != nil {
				return err
			}
			return withCatalog(cmd, required, func(cat *catalog.Catalog) error {
				d := f.driver(cmd, cat)
				r, err := act(cmd.Context(), d, id, reason)
				if err != nil {
					return err
				}
				if !wait {
					return drawRollout(r, false)
				}
				return f.drive(cmd, d, r)
			})
		},
	}
	f.add(cmd, wait)
	if strings.HasPrefix(use, "pause") {
		cmd.Flags().StringVar(&reason, "reason", "", "why (recorded, and shown by status)")
	}
	return cmd
}

func newRolloutAdvanceCmd() *cobra.Command {
	return newRolloutVerb("advance ID", "Look again: do the next step of a running rollout (for cron; the reconciler does it too)", true,
		func(ctx context.Context, d *rollout.Driver, id int64, _ string) (catalog.Rollout, error) {
			return d.Get(ctx, id)
		})
}

func newRolloutPauseCmd() *cobra.Command {
	return newRolloutVerb("pause ID", "Pause a running rollout before its next batch", false,
		func(ctx context.Context, d *rollout.Driver, id int64, reason string) (catalog.Rollout, error) {
			return d.Pause(ctx, id, reason)
		})
}

func newRolloutResumeCmd() *cobra.Command {
	return newRolloutVerb("resume ID", "Resume a paused rollout (after an unhealthy batch is fixed, or by hand)", true,
		func(ctx context.Context, d *rollout.Driver, id int64, _ string) (catalog.Rollout, error) {
			return d.Resume(ctx, id)
		})
}

func newRolloutRollbackCmd() *cobra.Command {
	return newRolloutVerb("rollback ID", "Roll the targets of a rollout back to the version they ran before", true,
		func(ctx context.Context, d *rollout.Driver, id int64, _ string) (catalog.Rollout, error) {
			return d.Rollback(ctx, id)
		})
}

func newRolloutScriptsCmd() *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:   "scripts ID --dir DIR",
		Short: "Write the replacement scripts (hosts) and plans (VMs) of a rollout, one file per member",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := rolloutID(args[0])
			if err != nil {
				return err
			}
			if dir == "" {
				return errors.New("--dir is required: the folder to write the scripts to")
			}
			return withCatalog(cmd, required, func(cat *catalog.Catalog) error {
				r, err := cat.RolloutByID(cmd.Context(), id)
				if err != nil {
					return err
				}
				written, err := rollout.WriteScripts(r, dir)
				if err != nil {
					return err
				}
				if jsonOutput() {
					return printJSON(struct {
						ID    int64    `json:"rollout_id"`
						Files []string `json:"files"`
					}{r.ID, written})
				}
				for _, p := range written {
					fmt.Fprintln(stdout, p)
				}
				return nil
			})
		},
	}
	addCatalogFlag(cmd, nil)
	cmd.Flags().StringVar(&dir, "dir", "", "folder to write the scripts and plans to")
	return cmd
}
