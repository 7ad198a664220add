package azure

import (
	"fmt"
	"strings"
)

// Text renders the plan as a diff for people.
func (p *Plan) Text() string {
	var b strings.Builder
	src := "source not built yet"
	if p.Source != nil {
		src = "source " + shortDigest(p.Source.Digest)
	}
	fmt.Fprintf(&b, "Plan for azure %q: image %q as version %s (%s, generation %s)\n\n", p.Target, p.Image, p.Version, src, p.Generation)
	counts := map[Action]int{}
	for _, s := range p.Steps {
		counts[s.Action]++
		fmt.Fprintf(&b, "  %s %-9s %-15s %s", symbol(s.Action), s.Action, s.Kind, s.Name)
		if s.Reason != "" {
			fmt.Fprintf(&b, "  (%s)", s.Reason)
		}
		b.WriteString("\n")
		for _, c := range s.Changes {
			fmt.Fprintf(&b, "        %s\n", c)
		}
	}
	for _, w := range p.Warnings {
		fmt.Fprintf(&b, "\nwarning: %s\n", w)
	}
	b.WriteString("\n")
	if !p.HasChanges() {
		b.WriteString("No changes: Azure already matches the pipeline file.\n")
		return b.String()
	}
	var parts []string
	for _, a := range []Action{ActCreate, ActUpload, ActUpdate, ActReplicate, ActShare, ActDelete, ActWait, ActKeep} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	fmt.Fprintf(&b, "Plan: %s.\n", strings.Join(parts, ", "))
	return b.String()
}

func shortDigest(d string) string {
	if i := strings.IndexByte(d, ':'); i >= 0 && len(d) > i+13 {
		return d[:i+13]
	}
	return d
}

func symbol(a Action) string {
	switch a {
	case ActCreate, ActUpload, ActShare:
		return "+"
	case ActUpdate, ActReplicate:
		return "~"
	case ActDelete:
		return "-"
	case ActWait:
		return ">"
	}
	return "="
}
