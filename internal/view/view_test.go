package view

import (
	"testing"
	"time"

	"imgpipe/internal/catalog"
)

func TestTableAndCells(t *testing.T) {
	got := Table{Header: []string{"A", "LONGER"}, Rows: [][]string{{"xxxxxx", "1"}, {"y", ""}}}.String()
	want := "A       LONGER\nxxxxxx  1\ny       \n"
	if got != want {
		t.Fatalf("table:\n%q\nwant\n%q", got, want)
	}
	if When(time.Time{}) != "-" || When(time.Date(2026, 1, 2, 3, 4, 5, 0, time.FixedZone("x", 3600))) != "2026-01-02 02:04Z" {
		t.Error("When")
	}
	if Dash("") != "-" || Dash("a") != "a" || Short("0123456789012345678901") != "0123456789012345678…" || Short("abc") != "abc" {
		t.Error("Dash/Short")
	}
	for n, want := range map[int64]string{512: "512 B", 1536 * 1024: "1.5 MiB", 2 << 30: "2.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestLineageTree(t *testing.T) {
	l := &catalog.Lineage{Version: catalog.Version{Image: "web", Version: "1.0.0", Status: "active", Channels: []string{"test"}}}
	if got := Lineage(l); got != "web 1.0.0  active  channels: test\n  recorded    -\nlineage: no copies recorded yet (publish it)\n" {
		t.Fatalf("no copies:\n%s", got)
	}
	art := &catalog.LineageNode{Copy: catalog.Copy{Kind: catalog.KindArtifact, ResourceID: "/out/disk.raw", State: "Present", Fingerprint: "sha256:ab"}}
	ver := &catalog.LineageNode{Copy: catalog.Copy{Kind: catalog.KindGalleryVersion, ResourceID: "/v", State: "Succeeded", Fingerprint: "sha256:ab"}}
	ver.Children = []*catalog.LineageNode{{Copy: catalog.Copy{Kind: catalog.KindRegion, Location: "westeurope", State: "Succeeded"}}}
	art.Children = []*catalog.LineageNode{ver, {Copy: catalog.Copy{Kind: catalog.KindOnprem, ResourceID: "/lib/web.vhdx"}}}
	l.Roots = []*catalog.LineageNode{art}
	want := `web 1.0.0  active  channels: test
  recorded    -
lineage:
  artifact  /out/disk.raw  [Present]  sha256:ab
  ├── gallery_version  /v  [Succeeded]  sha256:ab
  │   └── region  westeurope  [Succeeded]
  └── onprem  /lib/web.vhdx  [-]
`
	if got := Lineage(l); got != want {
		t.Fatalf("lineage:\n%s\nwant:\n%s", got, want)
	}
}
