package onprem

import (
	"strings"
	"testing"
)

func TestOpenLibraryNeedsAPath(t *testing.T) {
	if _, err := OpenLibrary(""); err == nil || !strings.Contains(err.Error(), "--library DIR or set "+LibraryEnv) {
		t.Fatalf("OpenLibrary(\"\"): %v", err)
	}
	if _, err := OpenLibrary(t.TempDir()); err != nil {
		t.Fatal(err)
	}
}

func TestSetChannels(t *testing.T) {
	l := newLib(t)
	addBytes(t, l, "web", "1.0.0", pattern(1<<20, 3))
	if err := l.SetChannels("web", "1.0.0", nil); err == nil || !strings.Contains(err.Error(), "--channel prod") {
		t.Fatalf("no channel: %v", err)
	}
	if err := l.SetChannels("web", "1.0.0", []string{"test", "prod"}); err != nil {
		t.Fatal(err)
	}
	infos, err := l.List()
	if err != nil || len(infos) != 1 || infos[0].Channels["test"] != "1.0.0" || infos[0].Channels["prod"] != "1.0.0" {
		t.Fatalf("channels after SetChannels: %+v %v", infos, err)
	}
	// a bad name after a good one: the error names what already moved
	err = l.SetChannels("web", "1.0.0", []string{"canary", "latest"})
	if err == nil || !strings.Contains(err.Error(), "canary already point at 1.0.0") {
		t.Fatalf("second channel refused: %v", err)
	}
}
