package build

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Line is one line of `packer -machine-readable` output:
//
//	timestamp,target,type,data...
//
// Packer escapes commas inside fields as "%!(PACKER_COMMA)" and newlines and
// carriage returns as the two characters `\n` and `\r`; Data holds the fields
// unescaped. The format is the same from Packer 1.x through current releases.
type Line struct {
	Time   time.Time `json:"time"`
	Target string    `json:"target,omitempty"` // build name, e.g. "qemu.debian"; empty for global lines
	Type   string    `json:"type"`             // "ui", "artifact", "artifact-count", "error", "error-count", "version"...
	Data   []string  `json:"data,omitempty"`
}

// UI returns the level ("say", "message", "error") and text of a ui line.
func (l Line) UI() (level, text string, ok bool) {
	if l.Type != "ui" || len(l.Data) < 2 {
		return "", "", false
	}
	return l.Data[0], strings.Join(l.Data[1:], ","), true
}

// maxFields bounds the fields kept from one line (absurd input stays cheap).
const maxFields = 64

var errNotMachineReadable = errors.New("not a machine-readable Packer line")

// ParseLine parses one machine-readable line (without its trailing newline).
func ParseLine(s string) (Line, error) {
	s = strings.TrimSuffix(s, "\r")
	parts := strings.SplitN(s, ",", maxFields+3)
	if len(parts) < 3 {
		return Line{}, errNotMachineReadable
	}
	ts, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil || ts < 0 {
		return Line{}, fmt.Errorf("%w: timestamp %.20q", errNotMachineReadable, parts[0])
	}
	if parts[2] == "" {
		return Line{}, fmt.Errorf("%w: empty type", errNotMachineReadable)
	}
	l := Line{Time: time.Unix(ts, 0).UTC(), Target: unescape(parts[1]), Type: unescape(parts[2])}
	if len(parts) > 3 {
		l.Data = make([]string, len(parts)-3)
		for i, p := range parts[3:] {
			l.Data[i] = unescape(p)
		}
	}
	return l, nil
}

var unescaper = strings.NewReplacer("%!(PACKER_COMMA)", ",", `\n`, "\n", `\r`, "\r")
var escaper = strings.NewReplacer(",", "%!(PACKER_COMMA)", "\r", `\r`, "\n", `\n`)

func unescape(s string) string { return unescaper.Replace(s) }

// FormatLine is the inverse of ParseLine, as Packer writes it (used by tests
// and by anything that relays Packer's stream).
func FormatLine(l Line) string {
	f := []string{strconv.FormatInt(l.Time.Unix(), 10), escaper.Replace(l.Target), escaper.Replace(l.Type)}
	for _, d := range l.Data {
		f = append(f, escaper.Replace(d))
	}
	return strings.Join(f, ",")
}

// streamState accumulates what the machine-readable stream says about a
// run: artifacts per target (as Packer lists them at the end) and errors.
type streamState struct {
	artifacts   map[string]map[int]*streamArtifact // target -> index -> artifact
	buildErrors []string                           // "<target>: <message>" from "error" lines
	uiErrors    []string                           // ui,error texts
}

type streamArtifact struct {
	builderID, id string
	files         []string
}

func (st *streamState) add(l Line) {
	switch l.Type {
	case "ui":
		if level, text, ok := l.UI(); ok && level == "error" {
			if len(st.uiErrors) < 100 {
				st.uiErrors = append(st.uiErrors, strings.TrimSpace(text))
			}
		}
	case "error":
		if len(l.Data) > 0 && len(st.buildErrors) < 100 {
			msg := strings.Join(l.Data, ",")
			if l.Target != "" {
				msg = l.Target + ": " + msg
			}
			st.buildErrors = append(st.buildErrors, msg)
		}
	case "artifact":
		if len(l.Data) < 2 {
			return
		}
		idx, err := strconv.Atoi(l.Data[0])
		if err != nil || idx < 0 || idx > 1000 {
			return
		}
		if st.artifacts == nil {
			st.artifacts = map[string]map[int]*streamArtifact{}
		}
		byIdx := st.artifacts[l.Target]
		if byIdx == nil {
			byIdx = map[int]*streamArtifact{}
			st.artifacts[l.Target] = byIdx
		}
		a := byIdx[idx]
		if a == nil {
			a = &streamArtifact{}
			byIdx[idx] = a
		}
		switch l.Data[1] {
		case "builder-id":
			if len(l.Data) > 2 {
				a.builderID = l.Data[2]
			}
		case "id":
			if len(l.Data) > 2 {
				a.id = l.Data[2]
			}
		case "file":
			if len(l.Data) > 3 && len(a.files) < 10000 {
				a.files = append(a.files, strings.Join(l.Data[3:], ","))
			}
		}
	}
}

// finalArtifacts returns, per target, the last artifact in Packer's list
// that has files: the end of the post-processor chain.
func (st *streamState) finalArtifacts() map[string]*streamArtifact {
	out := map[string]*streamArtifact{}
	for target, byIdx := range st.artifacts {
		best := -1
		for i, a := range byIdx {
			if len(a.files) > 0 && i > best {
				best = i
			}
		}
		if best >= 0 {
			out[target] = byIdx[best]
		}
	}
	return out
}
