package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"imgpipe/internal/catalog"
)

func init() { register(newShowCmd) }

func newShowCmd() *cobra.Command {
	var loc string
	var doc string
	cmd := &cobra.Command{
		Use:   "show IMAGE VERSION",
		Short: "Show one version: provenance and every copy of it as a lineage tree",
		Long: `Show where a version came from (commit, Packer template hash and version,
build time, artifact SHA-256, Hyper-V generation, OS, parent version) and
every copy of its bits as a tree: the build artifact, its on-prem library
copies, the page blob, the managed image made from it, the gallery version
made from that, and the regions it is replicated to - each with its
fingerprint and state. The version may also be written IMAGE@VERSION.`,
		Example: `  imgpipe show web 1.4.0
  imgpipe show web@1.4.0 --output json`,
		Args: refArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			ref, err := parseRef(args)
			if err != nil {
				return err
			}
			c, err := openCatalog(cmd.Context(), loc)
			if err != nil {
				return err
			}
			defer c.Close()
			if doc != "" {
				return printDocument(cmd, c, ref, doc)
			}
			l, err := c.Lineage(cmd.Context(), ref)
			if err != nil {
				return err
			}
			if l.Tests, err = c.TestRuns(cmd.Context(), ref); err != nil {
				return err
			}
			if jsonOutput() {
				return printJSON(l)
			}
			if err := printLineage(l); err != nil {
				return err
			}
			return printTestRuns(l.Tests)
		},
	}
	addCatalogFlag(cmd, &loc)
	cmd.Flags().Bool("sbom", false, "print the version's CycloneDX SBOM instead")
	cmd.Flags().Bool("provenance", false, "print the version's signed provenance (DSSE envelope) instead")
	cmd.PreRunE = func(cmd *cobra.Command, args []string) error {
		for _, k := range []string{catalog.DocSBOM, catalog.DocProvenance} {
			if on, _ := cmd.Flags().GetBool(k); on {
				if doc != "" {
					return fmt.Errorf("--sbom and --provenance: choose one")
				}
				doc = k
			}
		}
		return nil
	}
	return cmd
}

func printLineage(l *catalog.Lineage) error {
	v := l.Version
	w := stdout
	head := fmt.Sprintf("%s %s  %s", v.Image, v.Version, v.Status)
	if len(v.Channels) > 0 {
		head += "  channels: " + strings.Join(v.Channels, ", ")
	}
	fmt.Fprintln(w, head)
	field := func(name, val string) {
		if val != "" {
			fmt.Fprintf(w, "  %-11s %s\n", name, val)
		}
	}
	if !v.BuildTime.IsZero() {
		field("built", fmtWhen(v.BuildTime))
	}
	field("recorded", fmtWhen(v.CreatedAt))
	field("commit", v.GitCommit)
	tmpl := v.TemplateHash
	if v.PackerVersion != "" {
		tmpl = strings.TrimSpace(tmpl + " (packer " + v.PackerVersion + ")")
	}
	field("template", tmpl)
	field("build id", v.BuildID)
	field("artifact", v.ArtifactSHA256)
	field("generation", v.HyperVGeneration)
	field("os", v.OSType)
	if v.Parent != nil {
		field("parent", v.Parent.String())
	}
	if v.Outdated != "" {
		field("outdated", v.Outdated+": rebuild on the newer parent")
	}
	if len(v.Tags) > 0 {
		var tags []string
		for k, val := range v.Tags {
			tags = append(tags, k+"="+val)
		}
		sort.Strings(tags)
		field("tags", strings.Join(tags, " "))
	}
	if !v.DeprecatedAt.IsZero() {
		field("deprecated", fmtWhen(v.DeprecatedAt)+", end of life "+fmtWhen(v.EndOfLife))
	}
	if r := v.Revocation; r != nil {
		s := fmt.Sprintf("%s by %s: %s", fmtWhen(r.At), r.By, r.Reason)
		if r.Cause != nil {
			s += " (because " + r.Cause.String() + " was revoked)"
		}
		field("revoked", s)
	}
	if len(l.Roots) == 0 {
		fmt.Fprintln(w, "lineage: no copies recorded yet (publish it)")
		return nil
	}
	fmt.Fprintln(w, "lineage:")
	var walk func(n *catalog.LineageNode, prefix string, last bool, depth int)
	walk = func(n *catalog.LineageNode, prefix string, last bool, depth int) {
		branch, next := "├── ", "│   "
		if last {
			branch, next = "└── ", "    "
		}
		if depth == 0 {
			branch, next = "", ""
		}
		line := copyLine(n.Copy)
		if n.Source != "" {
			line += "  (made from " + n.Source + ")"
		}
		fmt.Fprintf(w, "  %s%s%s\n", prefix, branch, line)
		for i, ch := range n.Children {
			walk(ch, prefix+next, i == len(n.Children)-1, depth+1)
		}
	}
	for _, r := range l.Roots {
		walk(r, "", true, 0)
	}
	return nil
}

func copyLine(cp catalog.Copy) string {
	parts := []string{string(cp.Kind)}
	if cp.Kind == catalog.KindRegion {
		parts = append(parts, cp.Location)
	} else {
		if cp.Location != "" {
			parts = append(parts, cp.Location)
		}
		parts = append(parts, cp.ResourceID)
	}
	parts = append(parts, "["+dash(cp.State)+"]")
	if cp.Fingerprint != "" {
		parts = append(parts, cp.Fingerprint)
	}
	return strings.Join(parts, "  ")
}
