package main

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"text/template"

	"github.com/spf13/cobra"

	"imgpipe/internal/azurite"
	"imgpipe/internal/events"
)

// The long help and the examples of every command live in help/, one
// Markdown file per command ("rollout-start.md" for "imgpipe rollout
// start"): the reference reads as text, and the Go files keep the wiring.
//
//go:embed help/*.md
var helpFiles embed.FS

// helpVars are the values help texts quote ({{.AzuritePinnedVersion}}), so
// they cannot go stale.
var helpVars = map[string]string{
	"AzuritePinnedVersion": azurite.PinnedVersion,
	"ReconcileEventType":   events.TypeReconcile,
	"OIDCSecretEnv":        oidcSecretEnv,
}

const examplesHeading = "## Examples\n\n"

// helpFile names the file in help/ that documents cmd.
func helpFile(cmd *cobra.Command) string {
	if !cmd.HasParent() {
		return cmd.Name() + ".md"
	}
	path := strings.TrimPrefix(cmd.CommandPath(), cmd.Root().Name()+" ")
	return strings.ReplaceAll(path, " ", "-") + ".md"
}

// attachHelp sets Long and Example of cmd and of every command below it
// from help/. A command documented both in code and in help/ is an error.
func attachHelp(cmd *cobra.Command) error {
	for _, c := range cmd.Commands() {
		if err := attachHelp(c); err != nil {
			return err
		}
	}
	name := helpFile(cmd)
	b, err := helpFiles.ReadFile("help/" + name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if cmd.Long != "" || cmd.Example != "" {
		return fmt.Errorf("%s has help both in code and in help/%s", cmd.CommandPath(), name)
	}
	cmd.Long, cmd.Example, err = parseHelp(cmd.CommandPath(), string(b))
	if err != nil {
		return fmt.Errorf("help/%s: %w", name, err)
	}
	return nil
}

// parseHelp reads "# PATH", a blank line, the long help, and optionally a
// "## Examples" section.
func parseHelp(path, text string) (long, example string, err error) {
	rest, ok := strings.CutPrefix(text, "# "+path+"\n\n")
	if !ok {
		return "", "", fmt.Errorf("must start with the heading %q and a blank line", "# "+path)
	}
	if ex, ok := strings.CutPrefix(rest, examplesHeading); ok {
		example = ex
	} else {
		long, example, _ = strings.Cut(rest, "\n\n"+examplesHeading)
	}
	long, example = strings.TrimSuffix(long, "\n"), strings.TrimSuffix(example, "\n")
	if !strings.Contains(long, "{{") {
		return long, example, nil
	}
	t, err := template.New(path).Option("missingkey=error").Parse(long)
	if err != nil {
		return "", "", err
	}
	var b strings.Builder
	if err := t.Execute(&b, helpVars); err != nil {
		return "", "", err
	}
	return b.String(), example, nil
}
