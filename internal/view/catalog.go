package view

// The catalog's answers: images, versions, a version's lineage, runs.

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"imgpipe/internal/catalog"
)

// Images is the table of imgpipe images.
func Images(imgs []catalog.Image) Table {
	t := Table{Header: []string{"IMAGE", "VERSIONS", "NEWEST", "CHANNELS"}}
	for _, im := range imgs {
		var chs []string
		for name, v := range im.Channels {
			chs = append(chs, name+"="+v)
		}
		sort.Strings(chs)
		t.Rows = append(t.Rows, []string{im.Name, strconv.Itoa(im.Versions), Dash(im.Latest), Dash(strings.Join(chs, " "))})
	}
	return t
}

// Versions is the table of imgpipe versions; tested[i] is the TESTED state
// of vs[i].
func Versions(vs []catalog.Version, tested []string) Table {
	t := Table{Header: []string{"VERSION", "STATUS", "CHANNELS", "BUILT", "COMMIT", "GEN", "TESTED", "PARENT", "NOTE"}}
	for i, v := range vs {
		parent := ""
		if v.Parent != nil {
			parent = v.Parent.String()
		}
		note := v.Outdated
		if v.Revocation != nil {
			note = "revoked: " + v.Revocation.Reason
		}
		built := v.BuildTime
		if built.IsZero() {
			built = v.CreatedAt
		}
		t.Rows = append(t.Rows, []string{v.Version, v.Status, Dash(strings.Join(v.Channels, ",")), When(built),
			Dash(Short(v.GitCommit)), Dash(v.HyperVGeneration), Dash(tested[i]), Dash(parent), note})
	}
	return t
}

// Lineage is imgpipe show's text: the version's provenance, then every
// copy of its bits as a tree.
func Lineage(l *catalog.Lineage) string {
	v := l.Version
	var b strings.Builder
	head := fmt.Sprintf("%s %s  %s", v.Image, v.Version, v.Status)
	if len(v.Channels) > 0 {
		head += "  channels: " + strings.Join(v.Channels, ", ")
	}
	b.WriteString(head + "\n")
	field := func(name, val string) {
		if val != "" {
			fmt.Fprintf(&b, "  %-11s %s\n", name, val)
		}
	}
	if !v.BuildTime.IsZero() {
		field("built", When(v.BuildTime))
	}
	field("recorded", When(v.CreatedAt))
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
		field("deprecated", When(v.DeprecatedAt)+", end of life "+When(v.EndOfLife))
	}
	if r := v.Revocation; r != nil {
		s := fmt.Sprintf("%s by %s: %s", When(r.At), r.By, r.Reason)
		if r.Cause != nil {
			s += " (because " + r.Cause.String() + " was revoked)"
		}
		field("revoked", s)
	}
	if len(l.Roots) == 0 {
		b.WriteString("lineage: no copies recorded yet (publish it)\n")
		return b.String()
	}
	b.WriteString("lineage:\n")
	var walk func(n *catalog.LineageNode, prefix string, last bool, depth int)
	walk = func(n *catalog.LineageNode, prefix string, last bool, depth int) {
		branch, next := "├── ", "│   "
		if last {
			branch, next = "└── ", "    "
		}
		if depth == 0 {
			branch, next = "", ""
		}
		line := CopyLine(n.Copy)
		if n.Source != "" {
			line += "  (made from " + n.Source + ")"
		}
		fmt.Fprintf(&b, "  %s%s%s\n", prefix, branch, line)
		for i, ch := range n.Children {
			walk(ch, prefix+next, i == len(n.Children)-1, depth+1)
		}
	}
	for _, r := range l.Roots {
		walk(r, "", true, 0)
	}
	return b.String()
}

// CopyLine is one copy in a lineage tree: kind, where, [state], fingerprint.
func CopyLine(cp catalog.Copy) string {
	parts := []string{string(cp.Kind)}
	if cp.Kind == catalog.KindRegion {
		parts = append(parts, cp.Location)
	} else {
		if cp.Location != "" {
			parts = append(parts, cp.Location)
		}
		parts = append(parts, cp.ResourceID)
	}
	parts = append(parts, "["+Dash(cp.State)+"]")
	if cp.Fingerprint != "" {
		parts = append(parts, cp.Fingerprint)
	}
	return strings.Join(parts, "  ")
}

// Runs is the table of imgpipe runs.
func Runs(runs []catalog.Run) Table {
	t := Table{Header: []string{"ID", "KIND", "IMAGE", "VERSION", "STATUS", "BY", "STARTED", "TOOK", "STEPS", "ERROR"}}
	for _, r := range runs {
		t.Rows = append(t.Rows, []string{strconv.FormatInt(r.ID, 10), r.Kind, Dash(r.Image), Dash(r.Version), r.Status,
			Dash(r.By), When(r.StartedAt), took(r), strconv.Itoa(len(r.Steps)), r.Error})
	}
	return t
}

func took(r catalog.Run) string {
	if r.EndedAt.IsZero() {
		return "-"
	}
	return r.EndedAt.Sub(r.StartedAt).Round(100 * time.Millisecond).String()
}

// Run is one run with every step (imgpipe runs --id).
func Run(r catalog.Run) string {
	var b strings.Builder
	fmt.Fprintf(&b, "run %d: %s %s %s  %s\n", r.ID, r.Kind, Dash(r.Image), r.Version, r.Status)
	fmt.Fprintf(&b, "  by %s, started %s, took %s\n", Dash(r.By), When(r.StartedAt), took(r))
	if r.Error != "" {
		fmt.Fprintf(&b, "  error: %s\n", r.Error)
	}
	if len(r.Steps) == 0 {
		return b.String()
	}
	t := Table{Header: []string{"STEP", "NAME", "STATUS", "DETAIL", "RESOURCES"}}
	for _, s := range r.Steps {
		t.Rows = append(t.Rows, []string{strconv.Itoa(s.Seq), s.Name, s.Status, s.Detail, strings.Join(s.ResourceIDs, " ")})
	}
	return b.String() + t.String()
}

// GCPlan is imgpipe gc's plan: the steps in order, the versions waiting for
// their grace period, and what is kept and why.
func GCPlan(p *catalog.GCPlan, azureConsulted bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "retention plan at %s: keep %d newest, older than %s, grace %s\n",
		p.Now.Format(time.RFC3339), p.Policy.KeepNewest, catalog.FormatAge(p.Policy.OlderThan), catalog.FormatAge(p.Policy.Grace))
	if !azureConsulted {
		b.WriteString("note: Azure was not asked which VMs and scale sets use a version; in use = fleet hosts in the catalog only\n")
	}
	if len(p.Steps) == 0 {
		b.WriteString("\nnothing to do\n")
	} else {
		b.WriteString("\nsteps, in order:\n")
		t := Table{Header: []string{"STAGE", "VERSION", "COPY", "RESOURCE", "WHY"}}
		for _, s := range p.Steps {
			kind, res := "(catalog)", ""
			if s.Copy != nil {
				kind, res = string(s.Copy.Kind), s.Copy.ResourceID
			}
			t.Rows = append(t.Rows, []string{s.Stage, s.Ref.String(), kind, res, s.Reason})
		}
		b.WriteString(t.String())
	}
	if len(p.Waiting) > 0 {
		b.WriteString("\ndeprecated, waiting for the grace period:\n")
		t := Table{Header: []string{"VERSION", "WHEN"}}
		for _, k := range p.Waiting {
			t.Rows = append(t.Rows, []string{k.Ref.String(), "deletable from " + When(k.Until)})
		}
		b.WriteString(t.String())
	}
	if len(p.Kept) > 0 {
		b.WriteString("\nkept:\n")
		t := Table{Header: []string{"VERSION", "WHY"}}
		for _, k := range p.Kept {
			what := k.Ref.String()
			if k.Copy != nil {
				what += " " + string(k.Copy.Kind)
			}
			t.Rows = append(t.Rows, []string{what, strings.Join(k.Reasons, "; ")})
		}
		b.WriteString(t.String())
	}
	return b.String()
}

// GCResult is what an applied gc did.
func GCResult(res *catalog.GCResult) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\napplied in run %d: %d done, %d failed, %d skipped\n", res.RunID, len(res.Done), len(res.Failed), len(res.Skipped))
	for _, s := range res.Skipped {
		fmt.Fprintf(&b, "  skipped: %s\n", s)
	}
	return b.String()
}
