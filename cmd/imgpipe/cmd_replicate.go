package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"imgpipe/internal/azure"
	"imgpipe/internal/catalog"
	"imgpipe/internal/config"
	"imgpipe/internal/pipeline"
)

func init() { register(newReplicateCmd) }

// resolveVersionArg turns VERSION (a full resource id, or with -f a bare
// version such as 1.2.3) into a resource id.
func resolveVersionArg(f azureFlags, arg string) (azure.ResourceID, error) {
	if strings.HasPrefix(arg, "/") {
		return azure.ParseResourceID(arg)
	}
	if f.file == "" {
		return azure.ResourceID{}, fmt.Errorf("%q is not a resource id: give the full version id, or -f pipeline.hcl with a bare version", arg)
	}
	if !config.ValidVersion(arg) {
		return azure.ResourceID{}, fmt.Errorf("%q is not a version (Major.Minor.Patch)", arg)
	}
	file, err := config.Load(f.file)
	if err != nil {
		return azure.ResourceID{}, err
	}
	az, err := file.AzureTarget(f.target)
	if err != nil {
		return azure.ResourceID{}, err
	}
	return azure.ResourceID{Subscription: az.Subscription, ResourceGroup: az.ResourceGroup, Gallery: az.Gallery, Definition: az.Definition, Version: arg}, nil
}

func newReplicateCmd() *cobra.Command {
	var (
		f        azureFlags
		regions  []string
		remove   []string
		replicas int32
		storage  string
		timeout  time.Duration
	)
	cmd := &cobra.Command{
		Use:   "replicate VERSION --add-region REGION",
		Short: "Add target regions to an existing gallery image version",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(regions) == 0 && len(remove) == 0 {
				return errors.New("name at least one region with --add-region (or --remove-region)")
			}
			id, err := resolveVersionArg(f, args[0])
			if err != nil {
				return err
			}
			if id.Kind() != "version" {
				return fmt.Errorf("%s is not a version id", args[0])
			}
			switch storage {
			case "Standard_LRS", "Standard_ZRS", "Premium_LRS":
			default:
				return fmt.Errorf("--storage-account-type %q: use Standard_LRS, Standard_ZRS or Premium_LRS", storage)
			}
			if replicas < 1 || replicas > 100 {
				return fmt.Errorf("--replicas %d: use 1-100", replicas)
			}
			s, err := openAzure(f, id.Subscription)
			if err != nil {
				return err
			}
			var add []config.TargetRegion
			for _, r := range regions {
				add = append(add, config.TargetRegion{Name: config.NormalizeLocation(r), Replicas: replicas, StorageAccountType: storage})
			}
			if timeout == 0 {
				timeout = 3 * time.Hour
				if s.az != nil {
					timeout = s.az.ReplicationTimeout
				}
			}
			return withCatalogOf(cmd, s.file, bestEffort, func(cat *catalog.Catalog) error {
				g := &pipeline.Gallery{Publisher: s.pub, Catalog: cat, By: whoAmI("")}
				if s.image != nil {
					g.Image = s.image.Name
				}
				if len(remove) > 0 {
					// removing replicas is always this explicit step: publish and
					// replicate never drop a region by omission
					removed, err := g.RemoveRegions(cmd.Context(), id, remove)
					if err != nil {
						return err
					}
					if !jsonOutput() {
						what := strings.Join(removed, ", ")
						if what == "" {
							what = "no region (none of them was a target)"
						}
						fmt.Fprintf(stdout, "removed %s from %s\n", what, id.Version)
					}
					if len(regions) == 0 {
						if jsonOutput() {
							return printJSON(map[string]any{"version_id": id.String(), "removed": removed})
						}
						return nil
					}
				}
				s.pub.OnEvent = progressReporter(cmd.ErrOrStderr())
				res, err := g.Replicate(cmd.Context(), id, add, timeout)
				if res != nil && res.AzureAnswer != "" && !jsonOutput() {
					fmt.Fprintf(cmd.ErrOrStderr(), "the version's source is gone (%s); Azure %s\n", res.Source.Why, strings.SplitN(res.AzureAnswer, "\n", 2)[0])
				}
				if err != nil {
					return err
				}
				if jsonOutput() {
					return printJSON(res)
				}
				if len(res.Added) == 0 {
					_, err = fmt.Fprintf(stdout, "%s already targets those regions\n", id.Version)
					return err
				}
				_, err = fmt.Fprintf(stdout, "replicated %s to %s\n", id.Version, strings.Join(res.Added, ", "))
				return err
			})
		},
	}
	f.add(cmd, false)
	cmd.Flags().StringArrayVar(&regions, "add-region", nil, "region to add (repeatable)")
	cmd.Flags().StringArrayVar(&remove, "remove-region", nil, "region to remove (repeatable): the one way imgpipe drops a replica; lifts safetyProfile.allowDeletionOfReplicatedLocations for the change and sets it back")
	cmd.Flags().Int32Var(&replicas, "replicas", 1, "replicas in each added region")
	cmd.Flags().StringVar(&storage, "storage-account-type", "Standard_LRS", "Standard_LRS, Standard_ZRS or Premium_LRS")
	durationVar(cmd.Flags(), &timeout, "replication-timeout", 0, "how long to wait for replication (default: the file's, or 3h)")
	cmd.Flags().String("catalog", "", "catalog whose region copies of the version are updated (default: the file's catalog block, $"+catalogEnv+", else the per-user one if it exists)")
	return cmd
}
