package view

import (
	"fmt"
	"io"
	"strings"

	"imgpipe/internal/build"
	"imgpipe/internal/pipeline"
)

// Build is imgpipe build's text: the artifacts, then the provenance, then
// what was recorded in the catalog (one "IMAGE VERSION in CATALOG" each).
func Build(res *build.Result, recorded []string) string {
	t := Table{Header: []string{"BUILD", "ARTIFACT", "FORMAT", "SIZE", "GENERATION", "SHA256"}}
	for _, a := range res.Artifacts {
		gen := a.Generation
		if a.GenerationFrom != "" {
			gen += " (" + a.GenerationFrom + ")"
		}
		t.Rows = append(t.Rows, []string{a.Build, a.Path, Dash(a.Format), Size(a.Size), gen, a.SHA256})
	}
	var b strings.Builder
	b.WriteString(t.String())
	p := res.Provenance
	commit := p.GitCommit
	switch {
	case commit == "":
		commit = "(not in a git repository)"
	case p.GitDirty:
		commit += " (uncommitted changes under the template's folder)"
	}
	fmt.Fprintf(&b, "\ntemplate   %s\ncommit     %s\npacker     %s (run %s)\nbuilt      %s, %s\n",
		p.Template, commit, p.PackerVersion, p.PackerRunUUID,
		p.Finished.Format("2006-01-02 15:04:05Z"), p.Finished.Sub(p.Started).Round(100_000_000))
	for _, f := range p.TemplateFiles {
		fmt.Fprintf(&b, "file       %s sha256 %s\n", f.Path, f.SHA256)
	}
	for _, r := range recorded {
		fmt.Fprintf(&b, "recorded   %s\n", r)
	}
	return b.String()
}

// PackerLine is the build's OnLine for people: Packer's messages, one a
// line, on w (stderr) as they come.
func PackerLine(w io.Writer) func(build.Line) {
	return func(l build.Line) {
		if l.Type == "raw" && len(l.Data) > 0 {
			fmt.Fprintln(w, l.Data[0])
			return
		}
		if _, text, ok := l.UI(); ok {
			fmt.Fprintln(w, text)
		}
	}
}

// Built draws what imgpipe build made and recorded.
func Built(w io.Writer, asJSON bool, b *pipeline.Built) error {
	var lines []string
	for _, r := range b.Recorded {
		lines = append(lines, r.Image+" "+r.Version+" in "+r.Catalog)
	}
	return Write(w, asJSON, b, Build(b.Result, lines))
}
