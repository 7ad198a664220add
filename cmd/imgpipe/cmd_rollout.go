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
)

func init() { register(newRolloutCmd) }

func newRolloutCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollout",
		Short: "Roll a promoted version out to what runs the image (Azure scale sets), and follow it",
		Long: `rollout moves the machines that run an image to a version, in batches, and
records each step in the catalog.

An Azure virtual machine scale set: the model's imageReference is set to the
version (left alone when it references the gallery definition, i.e. "latest":
then the version must be what latest resolves to), and the instances are
upgraded in batches by the scale set's rollingUpgradePolicy
(maxBatchInstancePercent, maxUnhealthyUpgradedInstancePercent,
pauseTimeBetweenBatches; Azure's defaults 20%, 20%, PT0S). With upgrade mode
Rolling, Azure runs the rolling upgrade and imgpipe follows it; with Manual,
imgpipe upgrades each batch itself (UpdateInstances) and checks instance health
after it. A batch whose instances are unhealthy stops the rollout: the rest stay
on the version they run, and the rollout is recorded as failed.

Not yet: standalone VMs (replace-each plans), Hyper-V hosts, pause/resume and
rollback.`,
	}
	cmd.AddCommand(newRolloutStartCmd(), newRolloutStatusCmd())
	return cmd
}

func newRolloutStartCmd() *cobra.Command {
	var (
		f          azureFlags
		scaleSet   string
		catalogLoc string
		poll       time.Duration
	)
	cmd := &cobra.Command{
		Use:   "start IMAGE VERSION --scale-set ID",
		Short: "Roll a scale set to a version in batches and wait until it is done or stopped",
		Long: `start rolls the scale set --scale-set to VERSION of IMAGE and returns when
every instance runs it (exit 0) or when the rollout stopped (exit 1: an
unhealthy batch, a cancelled upgrade, an error). Progress goes to stderr, one
line per change; the catalog keeps the rollout and each instance's state
(imgpipe rollout status).

VERSION is a full gallery image version id, or with -f pipeline.hcl a bare
version such as 1.2.3. IMAGE is the image's name in the catalog; the version
must be recorded there.`,
		Example: `  imgpipe rollout start web 1.4.2 -f pipeline.hcl \
      --scale-set /subscriptions/1111.../resourceGroups/prod/providers/Microsoft.Compute/virtualMachineScaleSets/web
  imgpipe rollout start web /subscriptions/.../galleries/g/images/web/versions/1.4.2 --scale-set ID -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if scaleSet == "" {
				return errors.New("--scale-set is required: the resource id of the scale set to roll")
			}
			ver, err := resolveVersionArg(f, args[1])
			if err != nil {
				return err
			}
			if ver.Kind() != "version" {
				return fmt.Errorf("%s is not a gallery image version", args[1])
			}
			sub := strings.Split(strings.Trim(scaleSet, "/"), "/")
			if len(sub) < 2 || !strings.EqualFold(sub[0], "subscriptions") {
				return fmt.Errorf("--scale-set %q is not a scale set id (/subscriptions/SUB/resourceGroups/RG/providers/Microsoft.Compute/virtualMachineScaleSets/NAME)", scaleSet)
			}
			cat, err := openCatalog(cmd.Context(), catalogLoc)
			if err != nil {
				return err
			}
			defer cat.Close()
			s, err := openAzure(f, sub[1])
			if err != nil {
				return err
			}
			rec, err := cat.StartRollout(cmd.Context(), catalog.Ref{Image: args[0], Version: ver.Version}, catalog.RolloutScaleSet, scaleSet)
			if err != nil {
				return err
			}
			errw := cmd.ErrOrStderr()
			// the record outlives an interrupt: written with a context that is not cancelled
			recCtx := context.WithoutCancel(cmd.Context())
			report := func(p azure.RolloutProgress) {
				fmt.Fprintf(errw, "rollout %d: %s batch %d: %d upgraded, %d unhealthy, %d upgrading, %d pending\n",
					rec.ID, p.Status, p.Batch, p.Successful, p.Failed, p.InProgress, p.Pending)
				_ = cat.UpdateRollout(recCtx, rec.ID, catalog.RolloutRunning, fmt.Sprintf("%s, batch %d", p.Status, p.Batch), members(p.Instances))
			}
			res, rerr := azure.RollScaleSet(cmd.Context(), s.pub.Clients, azure.ScaleSetRollout{ScaleSetID: scaleSet, VersionID: ver.String(), PollInterval: poll}, report)
			state, detail := catalog.RolloutCompleted, "every instance runs "+ver.Version
			var insts []azure.RolloutInstance
			if res != nil {
				insts = res.Instances
			}
			if rerr != nil {
				state, detail = catalog.RolloutFailed, rerr.Error()
			}
			if err := cat.UpdateRollout(recCtx, rec.ID, state, detail, members(insts)); err != nil {
				return errors.Join(rerr, err)
			}
			out := struct {
				ID int64 `json:"rollout_id"`
				*azure.RolloutResult
				Error string `json:"error,omitempty"`
			}{rec.ID, res, ""}
			if rerr != nil {
				out.Error = rerr.Error()
			}
			if jsonOutput() && res != nil {
				if err := printJSON(out); err != nil {
					return err
				}
			} else if res != nil {
				fmt.Fprintf(stdout, "rollout %d of %s %s to %s: %s (%s mode, model updated: %v)\n", rec.ID, args[0], ver.Version, scaleSet, state, res.Mode, res.ModelUpdated)
				if err := printInstances(res.Instances); err != nil {
					return err
				}
			}
			return rerr
		},
	}
	f.add(cmd, false)
	addCatalogFlag(cmd, &catalogLoc)
	cmd.Flags().StringVar(&scaleSet, "scale-set", "", "resource id of the scale set to roll")
	cmd.Flags().DurationVar(&poll, "poll", 5*time.Second, "how often to read the upgrade's progress")
	return cmd
}

func members(insts []azure.RolloutInstance) []catalog.RolloutMember {
	out := make([]catalog.RolloutMember, 0, len(insts))
	for _, in := range insts {
		out = append(out, catalog.RolloutMember{Member: in.InstanceID, Version: in.ExactVersion, State: in.State, Healthy: in.Healthy})
	}
	return out
}

func printInstances(insts []azure.RolloutInstance) error {
	rows := make([][]string, 0, len(insts))
	for _, in := range insts {
		rows = append(rows, []string{in.InstanceID, dash(in.ExactVersion), in.State, strconv.FormatBool(in.Healthy)})
	}
	return printTable([]string{"INSTANCE", "VERSION", "STATE", "HEALTHY"}, rows)
}

func newRolloutStatusCmd() *cobra.Command {
	var (
		catalogLoc string
		id         int64
		limit      int
	)
	cmd := &cobra.Command{
		Use:   "status [IMAGE]",
		Short: "List recorded rollouts, or show one with each instance's state",
		Long: `status lists the rollouts recorded in the catalog, newest first (of IMAGE
when given). --id shows one rollout with every instance: the version it runs
and its state (pending, upgrading, upgraded, unhealthy).`,
		Example: `  imgpipe rollout status web
  imgpipe rollout status --id 3 -o json`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cat, err := openCatalog(cmd.Context(), catalogLoc)
			if err != nil {
				return err
			}
			defer cat.Close()
			if id > 0 {
				r, err := cat.RolloutByID(cmd.Context(), id)
				if err != nil {
					return err
				}
				if jsonOutput() {
					return printJSON(r)
				}
				fmt.Fprintf(stdout, "rollout %d: %s %s to %s: %s (%s)\nstarted %s, updated %s\n", r.ID, r.Ref.Image, r.Ref.Version, r.Target, r.State, dash(r.Detail), fmtWhen(r.StartedAt), fmtWhen(r.UpdatedAt))
				rows := make([][]string, 0, len(r.Members))
				for _, m := range r.Members {
					rows = append(rows, []string{m.Member, dash(m.Version), m.State, strconv.FormatBool(m.Healthy)})
				}
				return printTable([]string{"INSTANCE", "VERSION", "STATE", "HEALTHY"}, rows)
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
				rows = append(rows, []string{strconv.FormatInt(r.ID, 10), r.Ref.Image, r.Ref.Version, r.Kind, r.Target, r.State,
					fmt.Sprintf("%d/%d", up, len(r.Members)), fmtWhen(r.StartedAt), dash(r.Detail)})
			}
			return printTable([]string{"ID", "IMAGE", "VERSION", "KIND", "TARGET", "STATE", "UPGRADED", "STARTED", "DETAIL"}, rows)
		},
	}
	addCatalogFlag(cmd, &catalogLoc)
	cmd.Flags().Int64Var(&id, "id", 0, "show this rollout with each instance")
	cmd.Flags().IntVar(&limit, "limit", 50, "at most this many rollouts")
	return cmd
}
