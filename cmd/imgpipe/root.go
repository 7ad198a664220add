package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"
)

// globalOptions are the flags every command shares.
type globalOptions struct {
	output   string // "text" or "json"
	logLevel string
}

var globals globalOptions

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "imgpipe",
		Short: "Immutable VM image pipeline: one build, the same bits on Hyper-V and in Azure",
		Long: `imgpipe takes one image built by Packer (VHDX, VHD or raw) and delivers the very
same bits to an on-premises Hyper-V library and to an Azure Compute Gallery,
recording every copy so you know which VMs run which image and which drifted.

Typical flow:
  imgpipe build packer/web.pkr.hcl --var version=1.4.0   # Packer build, provenance recorded
  imgpipe disk inspect out/web-1.4.0.vhdx                # format, sizes, generation, Azure readiness
  imgpipe plan -f pipeline.hcl                           # what publish would change
  imgpipe publish -f pipeline.hcl                        # on-prem library + Azure gallery version
  imgpipe promote web 1.4.0 --to prod                    # move a channel forward
  imgpipe show web 1.4.0                                 # every copy, with fingerprints
  imgpipe serve                                          # fleet dashboard: who runs what, who drifted

Try it without Azure: imgpipe emulator --start-azurite (see README).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if globals.output != "text" && globals.output != "json" {
				return fmt.Errorf("--output %q is not supported: use text or json", globals.output)
			}
			var lvl slog.Level
			if err := lvl.UnmarshalText([]byte(globals.logLevel)); err != nil {
				return fmt.Errorf("--log-level %q: use debug, info, warn or error", globals.logLevel)
			}
			slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})))
			return nil
		},
	}
	root.PersistentFlags().StringVarP(&globals.output, "output", "o", "text", "output format: text or json")
	root.PersistentFlags().StringVar(&globals.logLevel, "log-level", "warn", "log level on stderr: debug, info, warn, error")
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	return root
}

// subcommands is filled by the init functions of the cmd_*.go files, one file
// per verb, so adding a verb never touches this file.
var subcommands []func() *cobra.Command

func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// jsonOutput reports whether the user asked for machine-readable output.
func jsonOutput() bool { return globals.output == "json" }

// stdout is where commands write results; tests replace it.
var stdout io.Writer = os.Stdout
