package main

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
	"imgpipe/internal/view"
)

func init() { register(newPublishCmd) }

// azureFlags are shared by the Azure verbs.
type azureFlags struct {
	file   string
	target string
	source string
}

func (f *azureFlags) add(cmd *cobra.Command, fileRequired bool) {
	usage := "pipeline file (HCL)"
	if !fileRequired {
		usage += "; lets VERSION be a bare version such as 1.2.3"
	}
	cmd.Flags().StringVarP(&f.file, "file", "f", "", usage)
	cmd.Flags().StringVar(&f.target, "target", "", "azure block to use when the file has several")
	if fileRequired {
		_ = cmd.MarkFlagRequired("file")
	}
}

// azureSession is a pipeline target and a Publisher connected to it.
type azureSession struct {
	file  *config.File
	az    *config.Azure
	image *config.Image
	pub   *azure.Publisher
}

// openAzure loads the pipeline file (if any) and connects to subscription
// (the file's, when sub is "") as the environment says (azure.Connect).
func openAzure(f azureFlags, sub string) (*azureSession, error) {
	s := &azureSession{}
	account := ""
	if f.file != "" {
		file, err := config.Load(f.file)
		if err != nil {
			return nil, err
		}
		az, err := file.AzureTarget(f.target)
		if err != nil {
			return nil, err
		}
		storageEndpointFromEnv(az) // the emulator's Azurite, when the file names no endpoint
		s.file, s.az, s.image = file, az, file.Image(az.Image)
		sub = cmp.Or(sub, az.Subscription)
		if az.Storage != nil {
			account = az.Storage.Account
		}
	}
	if sub = cmp.Or(sub, os.Getenv("AZURE_SUBSCRIPTION_ID")); sub == "" {
		return nil, errors.New("no subscription: give -f pipeline.hcl, a full resource id, or set AZURE_SUBSCRIPTION_ID")
	}
	if err := checkLocalEndpoints(storageEndpointOf(s.az)); err != nil {
		return nil, err // a local emulator that is not running: say so now
	}
	var err error
	if s.pub, err = azure.Connect(sub, account); err != nil {
		return nil, err
	}
	return s, nil
}

// confirm asks on the terminal; without one, --yes is required.
func confirm(cmd *cobra.Command, question string) (bool, error) {
	if !isTerminal(os.Stdin) {
		return false, errors.New("not a terminal: pass --yes to proceed without asking")
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s [y/N] ", question)
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes", nil
}

// progressReporter draws upload bytes and per-region replication on stderr.
func progressReporter(w io.Writer) func(azure.Event) {
	var bar func(int64, int64)
	var finish func()
	last, lastStates, lastAt := "", "", time.Time{}
	hb := newStepHeartbeat(w) // without a terminal: a line every --progress-interval
	return func(ev azure.Event) {
		hb.event(ev)
		switch {
		case ev.Phase == "start" && ev.Step != nil:
			if jsonOutput() {
				return
			}
			fmt.Fprintf(w, "%s %s %s...\n", ev.Step.Action, ev.Step.Kind, ev.Step.Name)
			if ev.Step.Kind == azure.KindBlob && hb == nil {
				bar, finish = newProgressBar("upload", 0)
			}
		case ev.Phase == "progress" && ev.Bytes[1] > 0 && bar != nil:
			bar(ev.Bytes[0], ev.Bytes[1])
		case ev.Phase == "done" && ev.Step != nil && ev.Step.Kind == azure.KindBlob && finish != nil:
			finish()
			bar, finish = nil, nil
		case len(ev.Regions) > 0:
			// a line when a region changes state, else at most every 10 s
			var parts, states []string
			for _, r := range ev.Regions {
				parts = append(parts, fmt.Sprintf("%s %s %d%%", r.Region, r.State, r.Progress))
				states = append(states, r.Region+" "+r.State)
			}
			line, st := strings.Join(parts, ", "), strings.Join(states, ",")
			if line != last && (st != lastStates || time.Since(lastAt) >= 10*time.Second) && !jsonOutput() {
				fmt.Fprintf(w, "  replication: %s\n", line)
				last, lastStates, lastAt = line, st, time.Now()
			}
		}
	}
}

func newPublishCmd() *cobra.Command {
	var (
		f          azureFlags
		yes        bool
		timeout    time.Duration
		catalogLoc string
		noCatalog  bool
		version    string
		planFile   string
	)
	cmd := &cobra.Command{
		Use:   "publish -f pipeline.hcl",
		Short: "Publish the image to its Azure Compute Gallery and on-prem libraries, recording it in the catalog",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var err error
			if version != "" && !config.ValidVersion(version) {
				return fmt.Errorf("--version %q: use MAJOR.MINOR.PATCH", version)
			}
			var saved *pipeline.Saved
			if planFile != "" {
				if saved, err = pipeline.ReadSavedFile(planFile); err != nil {
					return err
				}
				f.file = cmp.Or(f.file, saved.File)
				if f.source == "" && saved.Source != nil {
					f.source = saved.Source.Path
				}
			}
			if f.file == "" {
				return &usageError{msg: "give the pipeline file (-f pipeline.hcl) or a saved plan (--plan plan.json)", help: cmd.CommandPath()}
			}
			w, err := openWiring(ctx, f, timeout)
			if err != nil {
				return err
			}
			req, err := w.request(ctx, f.source, version)
			if err != nil {
				return err
			}
			cat, err := openPublishCatalog(ctx, catalogLoc, noCatalog, w.file)
			if err != nil {
				return err
			}
			if cat != nil {
				defer cat.Close()
			}
			w.progress(cmd.ErrOrStderr())
			eng := w.engine(cat)
			if saved != nil {
				sum, err := pipeline.FileSHA256(f.file)
				if err != nil {
					return err
				}
				plan, res, err := eng.PublishSaved(ctx, saved, sum, req)
				if res == nil {
					return err
				}
				return showPublished(plan, res, err)
			}
			plan, res, err := eng.Publish(ctx, req, func(p *pipeline.Plan) (bool, error) {
				if !jsonOutput() && w.az != nil {
					fmt.Fprint(cmd.ErrOrStderr(), view.PlanText(p))
				}
				if yes || !p.HasChanges() || w.az == nil {
					return true, nil // on premises only: nothing leaves the site, no question (as before)
				}
				return confirm(cmd, "Apply this plan?")
			})
			if res == nil {
				return err
			}
			return showPublished(plan, res, err)
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&planFile, "plan", "", "apply exactly this saved plan (imgpipe plan --out FILE); refused when the file, the source or a destination changed since")
	cmd.Flags().StringVar(&f.source, "source", "", "disk image to publish instead of the image block's source (e.g. a fresh build)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "apply without asking")
	durationVar(cmd.Flags(), &timeout, "replication-timeout", 0, "override replication_timeout: how long to wait for replication before exiting 3 (it continues in Azure)")
	cmd.Flags().StringVar(&catalogLoc, "catalog", "", "record the version, its lineage and the run in this catalog (default: the file's catalog block, then $"+catalogEnv+", then the per-user SQLite catalog)")
	cmd.Flags().BoolVar(&noCatalog, "no-catalog", false, "record nothing in a catalog (imgpipe promote and gc then do not know the version)")
	cmd.Flags().StringVar(&version, "version", "", "version for a pipeline file without an azure block (default: the library version holding this disk, else the next patch)")
	addLockTimeoutFlag(cmd)
	return cmd
}
