package pipeline

// Saved plans: `imgpipe plan --out plan.json` writes one; `imgpipe publish
// --plan plan.json` applies exactly it, and refuses, naming what changed,
// when the pipeline file, the source or a destination changed since.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// SavedFormat is the version of the saved-plan format.
const SavedFormat = 1

// Saved is a plan written to a file.
type Saved struct {
	Format       int                `json:"format"`
	Image        string             `json:"image"`
	Version      string             `json:"version"`
	File         string             `json:"file"`        // the pipeline file, absolute
	FileSHA256   string             `json:"file_sha256"` // of its bytes
	Source       *SavedSource       `json:"source,omitempty"`
	Destinations []SavedDestination `json:"destinations"`
	Created      time.Time          `json:"created"`
}

// SavedSource is the disk the plan was made for.
type SavedSource struct {
	Path   string `json:"path"`
	Digest string `json:"digest"`
	SHA256 string `json:"sha256"`
}

// SavedDestination is one destination's plan as it was made.
type SavedDestination struct {
	Name string          `json:"name"`
	Text string          `json:"text"`
	Plan json.RawMessage `json:"plan"`
}

// ErrPlanChanged is wrapped by the refusal of a saved plan that no longer
// matches the file, the source or the destinations.
var ErrPlanChanged = errors.New("the saved plan no longer matches")

// Save records p, made from the pipeline file at path (whose bytes have
// the SHA-256 fileSHA256).
func (p *Plan) Save(path, fileSHA256 string, now time.Time) (*Saved, error) {
	s := &Saved{Format: SavedFormat, Image: p.Image, Version: p.Version, File: path, FileSHA256: fileSHA256, Created: now.UTC()}
	if p.Source != nil {
		s.Source = &SavedSource{Path: p.Source.Path, Digest: p.Source.Digest, SHA256: p.Source.SHA256}
	}
	for _, d := range p.Destinations {
		b, err := json.Marshal(d.Plan)
		if err != nil {
			return nil, fmt.Errorf("save the plan of %s: %w", d.Name, err)
		}
		s.Destinations = append(s.Destinations, SavedDestination{Name: d.Name, Text: d.Plan.Text(), Plan: b})
	}
	return s, nil
}

// ReadSaved reads a saved plan.
func ReadSaved(r io.Reader) (*Saved, error) {
	var s Saved
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("read the saved plan: %w (make one with imgpipe plan --out FILE)", err)
	}
	if s.Format != SavedFormat {
		return nil, fmt.Errorf("saved plan format %d: this imgpipe reads format %d; make the plan again", s.Format, SavedFormat)
	}
	return &s, nil
}

// CheckInputs refuses the saved plan when the pipeline file or the source
// changed since it was made.
func (s *Saved) CheckInputs(fileSHA256 string, r Request) error {
	if fileSHA256 != s.FileSHA256 {
		return fmt.Errorf("%w: the pipeline file %s changed since the plan was made (%s): make the plan again", ErrPlanChanged, s.File, s.Created.Format(time.RFC3339))
	}
	switch {
	case s.Source == nil && r.Source != nil:
		return fmt.Errorf("%w: the plan was made before the image was built; %s exists now: make the plan again", ErrPlanChanged, r.Source.Path)
	case s.Source != nil && r.Source == nil:
		return fmt.Errorf("%w: the source %s is gone", ErrPlanChanged, s.Source.Path)
	case s.Source != nil && !r.Source.Is(s.Source.Digest):
		return fmt.Errorf("%w: the source %s changed since the plan was made (it was %s, it is now %s): make the plan again",
			ErrPlanChanged, r.Source.Path, s.Source.Digest, r.Source.Digest)
	}
	if r.Version != "" && r.Version != s.Version {
		return fmt.Errorf("%w: the plan publishes version %s, not %s", ErrPlanChanged, s.Version, r.Version)
	}
	return nil
}

// Matches refuses a fresh plan that differs from the saved one, naming the
// destinations that changed and how.
func (s *Saved) Matches(p *Plan) error {
	if p.Version != s.Version {
		return fmt.Errorf("%w: the plan was for version %s, it would now be %s", ErrPlanChanged, s.Version, p.Version)
	}
	if len(p.Destinations) != len(s.Destinations) {
		return fmt.Errorf("%w: the plan had %d destinations, there are now %d", ErrPlanChanged, len(s.Destinations), len(p.Destinations))
	}
	var changed []string
	for i, d := range p.Destinations {
		was := s.Destinations[i]
		b, err := json.Marshal(d.Plan)
		if err != nil {
			return err
		}
		if d.Name != was.Name {
			changed = append(changed, fmt.Sprintf("destination %d was %s, is now %s", i+1, was.Name, d.Name))
			continue
		}
		if !jsonEqual(b, was.Plan) {
			changed = append(changed, fmt.Sprintf("%s changed since the plan was made:\n%s", d.Name, lineDiff(was.Text, d.Plan.Text())))
		}
	}
	if len(changed) > 0 {
		return fmt.Errorf("%w: %s\nmake the plan again", ErrPlanChanged, strings.Join(changed, "\n"))
	}
	return nil
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return string(xa) == string(ya)
}

// lineDiff shows the lines only in was (-) and only in now (+).
func lineDiff(was, now string) string {
	in := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(s, "\n") {
			m[l] = true
		}
		return m
	}
	w, n := in(was), in(now)
	var b strings.Builder
	for _, l := range strings.Split(was, "\n") {
		if l != "" && !n[l] {
			fmt.Fprintf(&b, "  was: %s\n", strings.TrimSpace(l))
		}
	}
	for _, l := range strings.Split(now, "\n") {
		if l != "" && !w[l] {
			fmt.Fprintf(&b, "  now: %s\n", strings.TrimSpace(l))
		}
	}
	if b.Len() == 0 {
		return "  (the same steps, with other details)"
	}
	return strings.TrimRight(b.String(), "\n")
}

// PublishSaved applies a saved plan: it refuses when the file or the
// source changed, then, under the image's lock, plans again and applies
// only if the destinations still plan exactly what was saved.
func (e *Engine) PublishSaved(ctx context.Context, s *Saved, fileSHA256 string, r Request) (*Plan, *Result, error) {
	if err := s.CheckInputs(fileSHA256, r); err != nil {
		return nil, nil, err
	}
	r.Version = s.Version
	return e.Publish(ctx, r, func(p *Plan) (bool, error) {
		if err := s.Matches(p); err != nil {
			return false, err
		}
		return true, nil
	})
}
