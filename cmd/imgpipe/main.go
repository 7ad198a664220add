// Command imgpipe builds one VM image and delivers the same bits to Hyper-V
// hosts and to Azure Compute Gallery, tracking every copy by version.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stderr))
}

// run executes one imgpipe command line and returns the process exit status.
// An interrupt (Ctrl-C, SIGTERM) cancels the command's context.
func run(parent context.Context, args []string, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetErr(stderr)
	err := asUsage(root.ExecuteContext(ctx))
	interrupted := ctx.Err() != nil && parent.Err() == nil
	code := exitCode(err, interrupted)
	if err != nil {
		renderError(stderr, stdout, err, code)
	}
	return code
}

// globalOptions are the flags every command shares.
type globalOptions struct {
	output   string // "text" or "json"
	logLevel string
	debug    bool // show errors as they came, with the SDK's raw detail
}

var globals globalOptions

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "imgpipe",
		Short:         "Immutable VM image pipeline: one build, the same bits on Hyper-V and in Azure",
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
	addProgressFlags(root.PersistentFlags())
	root.PersistentFlags().BoolVar(&globals.debug, "debug", false, "also print errors as they came (the SDK's raw response), before the readable rendering")
	for _, add := range subcommands {
		root.AddCommand(add())
	}
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{msg: err.Error(), help: cmd.CommandPath()}
	})
	refuseUnknownSubcommands(root)
	if err := attachHelp(root); err != nil {
		panic(err) // help/ is embedded: TestHelpFiles catches this before a release
	}
	return root
}

// refuseUnknownSubcommands makes every command that only groups others
// ("imgpipe drift", "imgpipe catalog") refuse an unknown subcommand with
// exit 1 instead of printing its help and exiting 0: "imgpipe drift chek"
// in a timer must not read as "no drift".
func refuseUnknownSubcommands(cmd *cobra.Command) {
	for _, c := range cmd.Commands() {
		refuseUnknownSubcommands(c)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() || !cmd.HasParent() {
		return
	}
	cmd.Args = cobra.ArbitraryArgs
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return cmd.Help()
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if cmd.SuggestionsMinimumDistance <= 0 {
			cmd.SuggestionsMinimumDistance = 2
		}
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += fmt.Sprintf("; did you mean %q?", s[0])
		}
		return &usageError{msg: msg, help: cmd.CommandPath()}
	}
}

// asUsage marks cobra's own errors about the command line (an unknown
// command or flag at the root) as usage errors.
func asUsage(err error) error {
	if err == nil {
		return nil
	}
	for _, p := range []string{"unknown command ", "unknown flag: ", "unknown shorthand flag: ", "required flag(s) ", "accepts ", "requires at least ", "requires at most ", "invalid argument "} {
		if strings.HasPrefix(err.Error(), p) {
			return &usageError{msg: err.Error()}
		}
	}
	return err
}

// subcommands is filled by the init functions of the cmd_*.go files, one file
// per verb, so adding a verb never touches this file.
var subcommands []func() *cobra.Command

func register(f func() *cobra.Command) { subcommands = append(subcommands, f) }

// stdout is where commands write results; tests replace it.
var stdout io.Writer = os.Stdout

// jsonOutput reports whether the user asked for machine-readable output.
func jsonOutput() bool { return globals.output == "json" }
