package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/pipeline"
)

func init() { register(newDestroyCmd) }

func newDestroyCmd() *cobra.Command {
	var (
		f          azureFlags
		scope      string
		yes, force bool
	)
	cmd := &cobra.Command{
		Use:   "destroy [ID | VERSION]",
		Short: "Remove a gallery image version, a definition or a whole gallery, in dependency order",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var id azure.ResourceID
			var err error
			switch {
			case len(args) == 1:
				id, err = resolveVersionArg(f, args[0])
			case f.file != "":
				id, err = resolveVersionArg(f, "0.0.0")
				id.Version = ""
				switch scope {
				case "definition":
				case "gallery":
					id.Definition = ""
				default:
					return errors.New("--scope must be definition or gallery (or give a VERSION)")
				}
			default:
				return errors.New("say what to destroy: a resource id, or -f pipeline.hcl with VERSION or --scope")
			}
			if err != nil {
				return err
			}
			s, err := openAzure(f, id.Subscription)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			dp, err := s.pub.PlanDestroy(ctx, id, force)
			if err != nil {
				return err
			}
			if jsonOutput() && !yes {
				return printJSON(dp)
			}
			if !jsonOutput() {
				fmt.Fprint(cmd.ErrOrStderr(), dp.Text())
			}
			if !dp.HasChanges() {
				return nil
			}
			if !yes {
				ok, err := confirm(cmd, "Delete these resources?")
				if err != nil {
					return err
				}
				if !ok {
					return errors.New("nothing deleted")
				}
			}
			s.pub.OnEvent = progressReporter(cmd.ErrOrStderr())
			err = withCatalogOf(cmd, s.file, bestEffort, func(cat *catalog.Catalog) error {
				return (&pipeline.Gallery{Publisher: s.pub, Catalog: cat, By: whoAmI("")}).Destroy(ctx, id, dp)
			})
			if err != nil {
				return explainJoined(err)
			}
			if jsonOutput() {
				return printJSON(dp)
			}
			_, err = fmt.Fprintf(stdout, "destroyed %s\n", id)
			return err
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringVar(&scope, "scope", "", "with -f and no VERSION: definition or gallery")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "delete without asking")
	cmd.Flags().BoolVar(&force, "force", false, "also delete versions still used by VMs or scale sets")
	cmd.Flags().String("catalog", "", "record the run, and mark the deleted copies, in this catalog (default: the file's catalog block, then $"+catalogEnv+", then the per-user catalog if it exists)")
	return cmd
}

// explainJoined renders each of several joined errors.
func explainJoined(err error) error {
	var j interface{ Unwrap() []error }
	if !errors.As(err, &j) {
		return err
	}
	var parts []string
	for _, e := range j.Unwrap() {
		parts = append(parts, azure.Explain(e))
	}
	return &explainedMany{err: err, text: strings.Join(parts, "\n")}
}

type explainedMany struct {
	err  error
	text string
}

func (e *explainedMany) Error() string { return e.text }
func (e *explainedMany) Unwrap() error { return e.err }
