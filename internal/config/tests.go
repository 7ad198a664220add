package config

// test "NAME" { ... } blocks: how a version is tested before it may reach
// prod (imgpipe test, internal/testrun). Read by parseTests, a hook Parse
// calls before decoding the rest of the file.

import (
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/gohcl"
)

// Test is one declared test of an image.
type Test struct {
	Name  string
	Image string // the image block it tests ("" resolved to the only image)
	// BootTimeout bounds the whole boot and check (default 5m).
	BootTimeout time.Duration
	// BootMarker is console text that marks a successful boot ("" : the
	// agent's report marks it).
	BootMarker string
	// DriftClean: the image's drift check must be clean on first boot
	// (default true: a fresh VM that drifts means the baseline or the image is wrong).
	DriftClean bool
	Commands   []TestCommand
	Range      hcl.Range
}

// TestCommand is a command run in the guest with its expected exit status.
type TestCommand struct {
	Name       string
	Run        string
	ExpectExit int
	Timeout    time.Duration // default 60s
}

type rawTest struct {
	Name        string           `hcl:"name,label"`
	Image       *string          `hcl:"image"`
	BootTimeout *string          `hcl:"boot_timeout"`
	BootMarker  *string          `hcl:"boot_marker"`
	DriftClean  *bool            `hcl:"drift_clean"`
	Commands    []rawTestCommand `hcl:"command,block"`
	Body        hcl.Body         `hcl:",body"`
	DefRange    hcl.Range        `hcl:",def_range"`
}

type rawTestCommand struct {
	Name       string    `hcl:"name,label"`
	Run        string    `hcl:"run"`
	ExpectExit *int      `hcl:"expect_exit"`
	Timeout    *string   `hcl:"timeout"`
	Body       hcl.Body  `hcl:",body"`
	DefRange   hcl.Range `hcl:",def_range"`
}

var testsSchema = &hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "test", LabelNames: []string{"name"}}}}

// parseTests takes the test blocks out of body and returns them with the
// rest of the body.
func parseTests(body hcl.Body) ([]rawTest, hcl.Body, hcl.Diagnostics) {
	content, rest, diags := body.PartialContent(testsSchema)
	var out []rawTest
	for _, b := range content.Blocks {
		rt := rawTest{Name: b.Labels[0]}
		diags = append(diags, gohcl.DecodeBody(b.Body, nil, &rt)...)
		rt.Name, rt.DefRange = b.Labels[0], b.DefRange
		out = append(out, rt)
	}
	return out, rest, diags
}

// tests validates the test blocks against the file's images.
func (v *validator) tests(raw []rawTest, f *File) []Test {
	var out []Test
	seen := map[string]bool{}
	for _, r := range raw {
		t := Test{Name: r.Name, Image: str(r.Image), BootTimeout: 5 * time.Minute, BootMarker: str(r.BootMarker), DriftClean: true, Range: r.DefRange}
		if !nameRE.MatchString(r.Name) {
			v.errf(r.DefRange, "invalid test name", "%q: use 1-80 letters, digits, '.', '_' or '-'", r.Name)
		}
		t.Image = v.imageOf(f, r.Image, r.Body, r.DefRange, fmt.Sprintf("test %q", r.Name))
		if seen[t.Image+"/"+t.Name] {
			v.errf(r.DefRange, "duplicate test", "test %q is declared twice for image %q", r.Name, t.Image)
		}
		seen[t.Image+"/"+t.Name] = true
		if r.BootTimeout != nil {
			d, err := ParseDuration(*r.BootTimeout)
			if err != nil || d < time.Second || d > 24*time.Hour {
				v.errf(attrRange(r.Body, "boot_timeout", r.DefRange), "invalid boot_timeout", "%q: a duration from 1s to 24h, such as \"5m\"", *r.BootTimeout)
			}
			t.BootTimeout = d
		}
		if r.DriftClean != nil {
			t.DriftClean = *r.DriftClean
		}
		if len(r.Commands) > 32 {
			v.errf(r.DefRange, "too many commands", "test %q: at most 32 commands", r.Name)
		}
		names := map[string]bool{}
		for _, c := range r.Commands {
			tc := TestCommand{Name: c.Name, Run: c.Run, Timeout: time.Minute}
			if !nameRE.MatchString(c.Name) || names[c.Name] {
				v.errf(c.DefRange, "invalid command name", "test %q: command %q: a unique name of 1-80 letters, digits, '.', '_' or '-'", r.Name, c.Name)
			}
			names[c.Name] = true
			if strings.TrimSpace(c.Run) == "" || len(c.Run) > 4096 {
				v.errf(attrRange(c.Body, "run", c.DefRange), "invalid run", "command %q: run is a shell command line of at most 4096 bytes", c.Name)
			}
			if c.ExpectExit != nil {
				tc.ExpectExit = *c.ExpectExit
				if tc.ExpectExit < 0 || tc.ExpectExit > 255 {
					v.errf(attrRange(c.Body, "expect_exit", c.DefRange), "invalid expect_exit", "command %q: expect_exit is 0-255", c.Name)
				}
			}
			if c.Timeout != nil {
				d, err := ParseDuration(*c.Timeout)
				if err != nil || d < time.Second || d > 24*time.Hour {
					v.errf(attrRange(c.Body, "timeout", c.DefRange), "invalid timeout", "command %q: %q: a duration from 1s to 24h", c.Name, *c.Timeout)
				}
				tc.Timeout = d
			}
			t.Commands = append(t.Commands, tc)
		}
		out = append(out, t)
	}
	return out
}

// TestsOf returns the tests declared for image.
func (f *File) TestsOf(image string) []Test {
	var out []Test
	for _, t := range f.Tests {
		if t.Image == image {
			out = append(out, t)
		}
	}
	return out
}

// String renders a test for messages.
func (t Test) String() string { return fmt.Sprintf("test %q of image %q", t.Name, t.Image) }
