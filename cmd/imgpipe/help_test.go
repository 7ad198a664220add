package main

import (
	"io/fs"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// Every file in help/ documents a command that exists, so help cannot
// outlive a renamed or removed verb; the root's help comes from its file.
func TestHelpFiles(t *testing.T) {
	root := newRootCmd()
	used := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		used[helpFile(c)] = true
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
	files, err := fs.Glob(helpFiles, "help/*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no help files embedded: %v", err)
	}
	for _, f := range files {
		if !used[strings.TrimPrefix(f, "help/")] {
			t.Errorf("%s documents no command", f)
		}
	}
	if !strings.HasPrefix(root.Long, "imgpipe takes one image") {
		t.Errorf("root help not attached: %q", root.Long)
	}
	start, _, err := root.Find([]string{"rollout", "start"})
	if err != nil || !strings.Contains(start.Example, "imgpipe rollout start web 1.4.2") || strings.Contains(start.Long, "## Examples") {
		t.Errorf("rollout start: long %q, example %q, %v", start.Long, start.Example, err)
	}
	emu, _, _ := root.Find([]string{"emulator"})
	if strings.Contains(emu.Long, "{{") || !strings.Contains(emu.Long, "azurite@3.") {
		t.Errorf("emulator help keeps its template: %q", emu.Long)
	}
}

func TestParseHelp(t *testing.T) {
	for _, tc := range []struct {
		text, long, example, err string
	}{
		{text: "# imgpipe x\n\nLong.\n\n## Examples\n\n  imgpipe x\n", long: "Long.", example: "  imgpipe x"},
		{text: "# imgpipe x\n\n## Examples\n\n  imgpipe x a\n  imgpipe x b\n", example: "  imgpipe x a\n  imgpipe x b"},
		{text: "# imgpipe x\n\nTwo\n\nparagraphs.\n", long: "Two\n\nparagraphs."},
		{text: "# imgpipe y\n\nLong.\n", err: "heading"},
		{text: "Long.\n", err: "heading"},
		{text: "# imgpipe x\n\n{{.Nope}}\n", err: "Nope"},
	} {
		long, example, err := parseHelp("imgpipe x", tc.text)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.text, err, tc.err)
			}
			continue
		}
		if err != nil || long != tc.long || example != tc.example {
			t.Errorf("%q: got %q, %q, %v; want %q, %q", tc.text, long, example, err, tc.long, tc.example)
		}
	}
}

func TestHelpInCodeAndFileRefused(t *testing.T) {
	root := &cobra.Command{Use: "imgpipe"}
	root.AddCommand(&cobra.Command{Use: "publish", Long: "also here", Run: func(*cobra.Command, []string) {}})
	if err := attachHelp(root); err == nil || !strings.Contains(err.Error(), "both in code and in help/publish.md") {
		t.Fatalf("err %v", err)
	}
}
