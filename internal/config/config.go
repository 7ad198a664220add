// Package config reads the imgpipe pipeline file: an HCL2 file, in the style of
// Packer and Terraform, that declares an image, where it comes from, and where
// it is delivered (an Azure Compute Gallery, an on-premises Hyper-V library).
//
// The file is pure data: it may not reference variables, environment
// variables or functions, so secrets can never be pulled into it. Credentials
// come from the environment of the process (azidentity), never from the file.
//
// Parse and Load return every problem at once, each with file:line:column.
package config

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
	"github.com/hashicorp/hcl/v2/hclsyntax"
)

// Load reads and validates the pipeline file at path.
func Load(path string) (*File, error) {
	src, err := readBounded(path)
	if err != nil {
		return nil, fmt.Errorf("read pipeline file: %w", err)
	}
	return Parse(src, path)
}

// Error is returned for an invalid pipeline file. Its message lists every
// problem with file:line:column.
type Error struct {
	Diags hcl.Diagnostics
}

func (e *Error) Error() string {
	var b strings.Builder
	n := 0
	for _, d := range e.Diags {
		if d.Severity != hcl.DiagError {
			continue
		}
		if n > 0 {
			b.WriteString("\n")
		}
		n++
		if d.Subject != nil {
			fmt.Fprintf(&b, "%s:%d:%d: ", d.Subject.Filename, d.Subject.Start.Line, d.Subject.Start.Column)
		}
		b.WriteString(d.Summary)
		if d.Detail != "" {
			b.WriteString(": ")
			b.WriteString(d.Detail)
		}
	}
	return b.String()
}

// Parse validates the pipeline file held in src; filename is used in error
// messages and to resolve relative paths.
func Parse(src []byte, filename string) (*File, error) {
	if filename == "" {
		filename = "pipeline.hcl"
	}
	if d := checkBounds(src, filename); d.HasErrors() {
		return nil, &Error{d}
	}
	f, diags := hclsyntax.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, &Error{diags}
	}
	// No variables, no functions: the file is data. Say so plainly rather
	// than with HCL's generic "Variables not allowed".
	if d := forbidReferences(f.Body.(*hclsyntax.Body)); d.HasErrors() {
		return nil, &Error{d}
	}
	rawTests, rest, d := parseTests(f.Body)
	if d.HasErrors() {
		return nil, &Error{d}
	}
	rawRebuilds, rest, d := parseRebuilds(rest)
	if d.HasErrors() {
		return nil, &Error{d}
	}
	rawRollouts, rest, d := parseRollouts(rest)
	if d.HasErrors() {
		return nil, &Error{d}
	}
	rawChannels, rest, d := parseChannels(rest)
	if d.HasErrors() {
		return nil, &Error{d}
	}
	var raw rawFile
	if d := gohcl.DecodeBody(rest, nil, &raw); d.HasErrors() {
		return nil, &Error{d}
	}
	dir := filepath.Dir(filename)
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	v := &validator{}
	out := v.file(&raw, filename, dir)
	out.Tests = v.tests(rawTests, out)
	out.Rebuilds = v.rebuilds(rawRebuilds, out)
	out.Rollouts = v.rollouts(rawRollouts, out)
	out.Channels = v.channels(rawChannels, out)
	if v.diags.HasErrors() {
		return nil, &Error{v.diags}
	}
	return out, nil
}

// forbidReferences reports every variable reference or function call.
func forbidReferences(body *hclsyntax.Body) hcl.Diagnostics {
	var diags hcl.Diagnostics
	_ = hclsyntax.VisitAll(body, func(n hclsyntax.Node) hcl.Diagnostics {
		switch e := n.(type) {
		case *hclsyntax.ScopeTraversalExpr:
			r := e.SrcRange
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "references are not allowed",
				Detail: fmt.Sprintf("%q refers to a variable; the pipeline file holds literal values only "+
					"(no variables, no environment, so no secrets can end up in it). Write the value itself; "+
					"credentials come from the environment of imgpipe (AZURE_CLIENT_ID...), never from this file",
					string(e.Traversal.RootName())),
				Subject: &r,
			})
		case *hclsyntax.FunctionCallExpr:
			r := e.NameRange
			diags = append(diags, &hcl.Diagnostic{
				Severity: hcl.DiagError,
				Summary:  "functions are not allowed",
				Detail: fmt.Sprintf("%s(...) is a function call; the pipeline file holds literal values only "+
					"(no env(), file() or other functions, so no secrets can end up in it)", e.Name),
				Subject: &r,
			})
		}
		return nil
	})
	return diags
}
